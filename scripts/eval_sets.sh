#!/usr/bin/env bash
# `make eval-data`: installs the small Debian packages the evaluation sets come from (only those
# missing), then builds the sets with scripts/eval_sets.py into OUT (default .data/eval). The
# builder fetches the other packages itself (`apt-get download`, `pip download`) and unpacks them
# under OUT/packages without installing them: they are large (stellarium-data, opencv-doc) or pull
# in dependencies the sets do not need (ruby for ruby-gemojione).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/.data/eval}"
PACKAGES=(gnome-backgrounds ukui-wallpapers plasma-workspace-wallpapers openclipart-png tuxpaint-stamps-default
          dataset-fashion-mnist fonts-dejavu-core)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "==> installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$ROOT/.venv/bin/python" "$ROOT/scripts/eval_sets.py" --out "$OUT"
