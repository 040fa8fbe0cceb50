#!/usr/bin/env python3
"""Helpers of scripts/make_bench_embeddings.sh: a set of >= 100,000 real images from Debian
packages, and the export of Lookalike's vectors of them.

  bench_images.py packages            the Debian packages the set needs, one a line
  bench_images.py collect OUT         writes OUT/images/<source>/... and OUT/SOURCES.json
  bench_images.py export OUT [--model NAME] [--min N]
                                      OUT/store's vectors -> OUT/vectors.npy, ids.txt, items.tsv

Sources: Fashion-MNIST (70,000 28x28 grey product photos, written as PNG) and the PNG files of
clip-art, Tux Paint stamp and icon-theme packages. Only regular files are taken (no symbolic
links), and the same bytes are kept once over the whole set: the first source in SOURCES, then
the first path in sorted order, wins. SVG files are left out: `lookalike add --recursive` only
walks raster image extensions.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

# (source name = folder under images/, Debian package, licence note). Order matters for dedup.
SOURCES = [
    ("fashion-mnist", "dataset-fashion-mnist",
     "Fashion-MNIST by Zalando Research, MIT (Expat) licence"),
    ("openclipart-png", "openclipart-png",
     "Open Clip Art Library 0.18, public domain (Creative Commons Public Domain Dedication)"),
    ("tuxpaint-stamps", "tuxpaint-stamps-default", "Tux Paint stamps, GPL-2"),
    ("oxygen-icons", "oxygen-icon-theme", "Oxygen icon theme (KDE), LGPL-3+"),
    ("paper-icons", "paper-icon-theme", "Paper icon theme by Sam Hewitt, CC-BY-SA-3.0 (one icon CC-BY-SA-4.0)"),
    ("moka-icons", "moka-icon-theme", "Moka icon theme by Sam Hewitt, CC-BY-SA-4.0 or GPL-3+"),
    ("faba-icons", "faba-icon-theme", "Faba icon theme by Sam Hewitt, GPL-3 or CC-BY-SA-4.0"),
    ("mate-icons", "mate-icon-theme", "MATE icon theme, LGPL-3+ or CC-BY-SA"),
    ("gnome-icons", "gnome-icon-theme", "GNOME icon theme (legacy), GPL-2+"),
    ("adwaita-icons", "adwaita-icon-theme", "Adwaita icon theme (GNOME), LGPL-3 or CC-BY-SA-3.0"),
    ("elementary-xfce-icons", "elementary-xfce-icon-theme", "elementary Xfce icon theme, GPL-2+ (a few CC-BY-SA-2.0)"),
    ("lxde-icons", "lxde-icon-theme", "LXDE (nuoveXT) icon theme, LGPL-3+"),
    ("tango-icons", "tango-icon-theme", "Tango icon library, public domain"),
    ("faenza-icons", "faenza-icon-theme", "Faenza icon theme by Tiheum, GPL-3+"),
]

RASTER = {".png", ".jpg", ".jpeg"}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def package_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip()


def package_files(package: str) -> list[str]:
    """The package's regular raster image files (no symlinks), sorted."""
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
    return sorted(path for path in listed.splitlines()
                  if os.path.splitext(path)[1].lower() in RASTER
                  and not os.path.islink(path) and os.path.isfile(path))


def copyright_licences(package: str) -> list[str]:
    """The `License:` fields of a machine-readable copyright file (empty for free-form files)."""
    path = Path(f"/usr/share/doc/{package}/copyright")
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("License:"):
            name = line.split(":", 1)[1].strip()
            if name and name not in found:
                found.append(name)
    return found


def target_name(path: str) -> str:
    """A package path made relative (without /usr/share/) and free of hidden components,
    which `lookalike add --recursive` would skip."""
    relative = os.path.relpath(path, "/usr/share") if path.startswith("/usr/share/") else path.lstrip("/")
    return "/".join("_" + part[1:] if part.startswith(".") else part for part in relative.split("/"))


def idx_images(path: Path):
    """The images of an IDX3 file (gzip): a uint8 array n x rows x cols."""
    import numpy as np
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    magic, count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise SystemExit(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def collect(out: Path) -> None:
    from PIL import Image
    images = out / "images"
    seen: set[str] = set()  # SHA-256 of every file kept so far
    report = []
    for name, package, note in SOURCES:
        kept = duplicates = considered = 0
        if package == "dataset-fashion-mnist":
            for split in ("train", "t10k"):
                array = idx_images(FASHION_DIR / f"{split}-images-idx3-ubyte.gz")
                for index, pixels in enumerate(array):
                    considered += 1
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="PNG")  # uint8 2-D array: 8-bit grey
                    data = buffer.getvalue()
                    digest = hashlib.sha256(data).hexdigest()
                    if digest in seen:
                        duplicates += 1
                        continue
                    seen.add(digest)
                    kept += 1
                    write_if_changed(images / name / split / f"{index // 1000:02d}" / f"{split}-{index:05d}.png", data)
        else:
            for path in package_files(package):
                considered += 1
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                if digest in seen:
                    duplicates += 1
                    continue
                seen.add(digest)
                kept += 1
                target = images / name / target_name(path)
                if not (target.exists() and target.stat().st_size == os.path.getsize(path)):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
        print(f"{name:24s} {kept:7d} images ({duplicates} duplicates of {considered} files skipped)", flush=True)
        report.append({
            "name": name, "package": package, "version": package_version(package),
            "files": considered, "duplicates_skipped": duplicates, "images": kept,
            "licence": note, "copyright_file": f"/usr/share/doc/{package}/copyright",
            "copyright_licences": copyright_licences(package),
        })
    total = sum(entry["images"] for entry in report)
    print(f"{'total':24s} {total:7d} distinct images", flush=True)
    sources = {
        "about": "Benchmark images for approximate nearest neighbour search, from Debian packages; "
                 "made by scripts/make_bench_embeddings.sh. Only regular PNG/JPEG files, each distinct "
                 "byte string once (earlier sources win). Each image keeps its package's licence.",
        "total_images": total,
        "sources": report,
    }
    (out / "SOURCES.json").write_text(json.dumps(sources, indent=2) + "\n")


def export(out: Path, model: str, minimum: int) -> None:
    import numpy as np
    catalog = out / "store" / "catalog.sqlite"
    if not catalog.exists():
        raise SystemExit(f"no catalog at {catalog}")
    images = str(out / "images")
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT v.item_id, v.dimension, v.data, i.source_path FROM vector v JOIN item i ON i.id = v.item_id "
        "WHERE v.model = ? ORDER BY v.item_id", (model,)).fetchall()
    db.close()
    if not rows:
        raise SystemExit(f"no vectors of model {model} in {catalog}")
    dimension = rows[0][1]
    vectors = np.empty((len(rows), dimension), dtype=np.float32)
    per_source: dict[str, int] = {}
    lines = []
    for row, (item_id, dim, blob, path) in enumerate(rows):
        if dim != dimension or len(blob) != 4 * dim:
            raise SystemExit(f"item {item_id}: vector of {dim} values in {len(blob)} bytes, expected {dimension}")
        vectors[row] = np.frombuffer(blob, dtype="<f4")
        relative = os.path.relpath(path, images)
        source = relative.split(os.sep, 1)[0] if not relative.startswith("..") else "other"
        per_source[source] = per_source.get(source, 0) + 1
        lines.append((item_id, source, relative))
    if not np.isfinite(vectors).all():
        raise SystemExit("some vectors are not finite")
    # Write beside, then rename, so a half-written file never looks finished.
    with open(out / "vectors.npy.tmp", "wb") as handle:
        np.save(handle, vectors)
    (out / "ids.txt.tmp").write_text("".join(f"{item_id}\n" for item_id, _, _ in lines))
    (out / "items.tsv.tmp").write_text("id\tsource\tpath\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in lines))
    for name in ("vectors.npy", "ids.txt", "items.tsv"):
        os.replace(out / f"{name}.tmp", out / name)
    sources_file = out / "SOURCES.json"
    if sources_file.exists():
        sources = json.loads(sources_file.read_text())
        for entry in sources["sources"]:
            entry["indexed"] = per_source.get(entry["name"], 0)
        sources["indexed"] = {"model": model, "vectors": len(rows), "dimension": dimension}
        sources_file.write_text(json.dumps(sources, indent=2) + "\n")
    for source, count in sorted(per_source.items()):
        print(f"{source:24s} {count:7d} vectors")
    print(f"exported N x D = {len(rows)} x {dimension} (model {model}) to {out / 'vectors.npy'}")
    if len(rows) < minimum:
        raise SystemExit(f"only {len(rows)} vectors, fewer than the {minimum} wanted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("packages")
    collect_parser = commands.add_parser("collect")
    collect_parser.add_argument("out", type=Path)
    export_parser = commands.add_parser("export")
    export_parser.add_argument("out", type=Path)
    export_parser.add_argument("--model", default="efficientnet-lite0")
    export_parser.add_argument("--min", type=int, default=0, help="fail when fewer vectors than this")
    args = parser.parse_args()
    if args.command == "packages":
        print("\n".join(package for _, package, _ in SOURCES))
    elif args.command == "collect":
        collect(Path(os.path.abspath(args.out)))
    else:
        export(Path(os.path.abspath(args.out)), args.model, args.min)


if __name__ == "__main__":
    sys.exit(main())
