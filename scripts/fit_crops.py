"""Fits query-side crops for copy detection: a query that finds no copy with its whole image is
searched again with crops of itself, and each item keeps the best of its whole-image score and
its best crop's score less a margin. Which crops, and the margin, are chosen on one half of the
photos and reported on the other.

The crops: squares of the query's shape (a share of its width and of its height) at the nine
places of a 3 x 3 grid, at the shares in SHARES. A layout is a subset of them (LAYOUTS). The rule:
among layouts and margins whose no-match queries labelled "copy" (best score at or above the
model's copy threshold) do not rise by more than one point over no crops and whose Recall@1
does not fall by more than half a point, on the fitting half of both sets, the one with the most
queries of `framed` right at rank 1 plus right and labelled "copy" (its fitting half).

The crops are cut here (Pillow, from the query scaled to twice the model's input size, saved
losslessly) and embedded by `lookalike add`; the engine cuts the same boxes from one decode of
the query at that size. Halves: by the MD5
of the query's group (its photo), even fits, odd reports.

    python scripts/fit_crops.py --lookalike .build/release/lookalike [--model sscd] [--json OUT]

It also writes each set's reporting half as DATA/<set>/reporting-half.jsonl, for `lookalike eval`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_tiles import half, read_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARES = [0.5, 0.7]
PLACES = [0.0, 0.5, 1.0]  # where the crop sits along each side: at the start, centred, at the end
LAYOUTS = {
    "none": [],
    "centre 0.5, 0.7": [(0.5, 0.5, 0.5), (0.7, 0.5, 0.5)],
    "grid 0.7": [(0.7, x, y) for y in PLACES for x in PLACES],
    "grid 0.5": [(0.5, x, y) for y in PLACES for x in PLACES],
    "grid 0.5 and 0.7": [(s, x, y) for s in SHARES for y in PLACES for x in PLACES],
}
MARGINS = [0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.15]
# Per model: its copy threshold, and the shorter and longest side it decodes a query at for crops
# (twice its input size: `ResizePolicy.doubled`).
MODELS = {"sscd": (0.728, 576, 2304), "sscd-distilled": (0.742, 576, 2304), "efficientnet-lite0-gem": (0.884, 448, 1792)}
SETS = ["framed", "copies"]


def doubled(image: Image.Image, size: int, longest: int) -> Image.Image:
    """The query as the engine decodes it for crops: at twice the model's size, its crops then
    resized to the model's size by the model's own policy."""
    scale = min(size / min(image.size), longest / max(image.size))
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)


def box(share: float, x: float, y: float, width: int, height: int) -> tuple[int, int, int, int]:
    w, h = max(1, round(width * share)), max(1, round(height * share))
    left, top = round((width - w) * x), round((height - h) * y)
    return left, top, left + w, top + h


def add(lookalike: str, paths: list[str], store: Path, model: str) -> dict[str, np.ndarray]:
    """Each file's vector by the model, added to `store` (files already there cost nothing)."""
    item_of: dict[str, str] = {}
    for start in range(0, len(paths), 2000):
        chunk = paths[start:start + 2000]
        result = subprocess.run([lookalike, "add", *chunk, "--store", str(store), "--model", model, "--json"],
                                capture_output=True, text=True, check=False)
        if result.returncode not in (0, 2):
            sys.exit(f"adding to {store} failed: {result.stderr[-2000:]}")
        report = json.loads(result.stdout)
        item_of.update({os.path.normpath(added["path"]): added["id"] for added in report["added"]})
        item_of.update({os.path.normpath(duplicate["path"]): duplicate["existing_id"] for duplicate in report["duplicates"]})
        print(f"  {store.name}: {min(start + 2000, len(paths))} of {len(paths)}", flush=True)
    with sqlite3.connect(store / "catalog.sqlite") as db:
        by_id = {item: np.frombuffer(blob, dtype=np.float32)
                 for item, blob in db.execute("SELECT item_id, data FROM vector WHERE model = ?", (model,))}
    return {path: by_id[item] for path, item in item_of.items()}


def stored_vectors(store: Path, model: str, paths: list[str]) -> dict[str, np.ndarray]:
    """The vectors a store already holds for these files, found by their content hash."""
    with sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True) as db:
        by_hash = {digest: np.frombuffer(blob, dtype=np.float32) for digest, blob in db.execute(
            "SELECT i.content_hash, v.data FROM vector v JOIN item i ON i.id = v.item_id WHERE v.model = ?", (model,))}
    found = {}
    for path in paths:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest not in by_hash:
            sys.exit(f"{store} has no {model} vector of {path}: run scripts/fit_crops.py first")
        found[path] = by_hash[digest]
    return found


def write_reporting_half(folder: Path) -> None:
    """FOLDER/reporting-half.jsonl: the set's manifest with only the queries of the reporting half,
    for `lookalike eval` through the engine (docs/QUALITY.md, BENCHMARKS.md)."""
    lines = [line for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    kept = [line for line in lines if (entry := json.loads(line))["role"] != "query" or half(entry["group"]) == 1]
    (folder / "reporting-half.jsonl").write_text("".join(line + "\n" for line in kept))


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def micro_ap(pairs: list[tuple[float, bool]], positives: int) -> float:
    """Average precision over every (score, right) pair of every query, ranked together (ties:
    wrong pairs first)."""
    pairs = sorted(pairs, key=lambda p: (-p[0], p[1]))
    correct, area = 0, 0.0
    for position, (_, right) in enumerate(pairs):
        if right:
            correct += 1
            area += correct / (position + 1) / max(1, positives)
    return area


def measures(scores: np.ndarray, relevant: list[set[int]], threshold: float, top: int = 100) -> dict:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    firsts, labelled, negatives_labelled, pairs, positives = [], [], [], [], 0
    for row, wanted in enumerate(relevant):
        hits = order[row]
        positives += len(wanted)
        pairs += [(scores[row, h], h in wanted) for h in hits]
        if wanted:
            firsts.append(hits[0] in wanted)
            labelled.append(hits[0] in wanted and scores[row, hits[0]] >= threshold)
        else:
            negatives_labelled.append(scores[row, hits[0]] >= threshold)
    return {"recall_at_1": float(np.mean(firsts)), "micro_ap": micro_ap(pairs, positives), "copy_label_recall": float(np.mean(labelled)),
            "negatives_labelled_copy": float(np.mean(negatives_labelled)) if negatives_labelled else 0.0,
            "queries": len(relevant), "negatives": len(negatives_labelled)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookalike", default=str(ROOT / ".build/release/lookalike"))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "eval")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "crops-stores")
    parser.add_argument("--model", default="sscd")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    threshold, size, longest = MODELS[args.model]
    crops_folder = args.work / f"crop-images-{args.model}"
    crops_folder.mkdir(parents=True, exist_ok=True)
    everything = [(share, x, y) for share in SHARES for y in PLACES for x in PLACES]
    table: dict = {}  # set -> side -> layout -> margin -> measures
    kept: dict = {}
    for name in SETS:
        entries = read_manifest(args.data / name / "manifest.jsonl")
        write_reporting_half(args.data / name)
        indexed = [e for e in entries if e["role"] != "query"]
        queries = [e for e in entries if e["role"] == "query"]
        print(f"{name}: embedding {len(indexed)} indexed images and {len(queries)} queries", flush=True)
        stored = add(args.lookalike, [e["path"] for e in indexed], args.work / f"indexed-{args.model}", args.model)
        gallery = unit(np.stack([stored[e["path"]] for e in indexed]))
        found = add(args.lookalike, [q["path"] for q in queries], args.work / f"queries-{args.model}", args.model)
        whole = unit(np.stack([found[q["path"]] for q in queries])) @ gallery.T
        # Crops only for the queries without a copy by their whole image.
        missed = [i for i in range(len(queries)) if whole[i].max() < threshold]
        crop_paths: dict[tuple[int, int], str] = {}
        for i in missed:
            stem = hashlib.sha256(queries[i]["path"].encode()).hexdigest()[:16]
            wanted = [(k, crops_folder / f"{stem}-{k}.png") for k in range(len(everything))]
            if not all(path.exists() for _, path in wanted):
                with Image.open(queries[i]["path"]) as opened:
                    image = doubled(ImageOps.exif_transpose(opened).convert("RGB"), size, longest)
                for k, path in wanted:
                    image.crop(box(*everything[k], image.width, image.height)).save(path, compress_level=1)
            for k, path in wanted:
                crop_paths[(i, k)] = str(path)
        print(f"{name}: {len(missed)} of {len(queries)} queries find no copy whole; {len(crop_paths)} crops", flush=True)
        crop_vectors = add(args.lookalike, sorted(set(crop_paths.values())), args.work / f"crops-{args.model}", args.model)
        crop_scores = np.full((len(queries), len(everything), gallery.shape[0]), -np.inf, dtype=np.float32)
        for (i, k), path in crop_paths.items():
            crop_scores[i, k] = unit(crop_vectors[os.path.normpath(path)]) @ gallery.T
        group_items: dict[str, set[int]] = {}
        for index, entry in enumerate(indexed):
            if entry["role"] == "gallery":
                group_items.setdefault(entry["group"], set()).add(index)
        kept[name] = (queries, whole, crop_scores, group_items)
        table[name] = {}
        for side in (0, 1):
            rows = [i for i, q in enumerate(queries) if half(q["group"]) == side]
            relevant = [group_items.get(queries[i]["group"], set()) for i in rows]
            table[name][side] = {}
            for layout, crops in LAYOUTS.items():
                picked = [everything.index(c) for c in crops]
                table[name][side][layout] = {}
                for margin in ([0.0] if not picked else MARGINS):
                    scores = whole[rows].copy()
                    if picked:
                        best = crop_scores[rows][:, picked, :].max(axis=1) - margin
                        scores = np.maximum(scores, best)
                    table[name][side][layout][margin] = measures(scores, relevant, threshold)
        print(f"{name}: done", flush=True)

    base = {name: {side: table[name][side]["none"][0.0] for side in (0, 1)} for name in SETS}

    def acceptable(layout: str, margin: float) -> bool:
        return all(table[name][0][layout][margin]["negatives_labelled_copy"] <= base[name][0]["negatives_labelled_copy"] + 0.01
                   and table[name][0][layout][margin]["recall_at_1"] >= base[name][0]["recall_at_1"] - 0.005 for name in SETS)

    def gain(layout: str, margin: float) -> float:
        measured = table["framed"][0][layout][margin]
        return round(measured["recall_at_1"] + measured["copy_label_recall"], 6)

    candidates = [(layout, margin) for layout in LAYOUTS for margin in table["framed"][0][layout] if acceptable(layout, margin)]
    fitted = max(candidates, key=lambda c: (gain(*c), -len(LAYOUTS[c[0]]), c[1]))
    print(f"fitted on the fitting half: {fitted[0]}, margin {fitted[1]}")
    print("layout | margin | framed R@1 | µAP | copy label recall | no-match labelled copy | copies R@1 | µAP | copy label recall | "
          "no-match labelled copy  (reporting half)")
    for layout, margins in table["framed"][1].items():
        for margin in margins:
            f, c = table["framed"][1][layout][margin], table["copies"][1][layout][margin]
            mark = "  <- fitted" if (layout, margin) == fitted else ""
            print(f"{layout} | {margin} | {f['recall_at_1']:.3f} | {f['micro_ap']:.3f} | {f['copy_label_recall']:.3f} | "
                  f"{f['negatives_labelled_copy']:.3f} | {c['recall_at_1']:.3f} | {c['micro_ap']:.3f} | {c['copy_label_recall']:.3f} | "
                  f"{c['negatives_labelled_copy']:.3f}{mark}")
    # Recall@1 by kind of edit on the reporting half, without crops and with the fitted ones.
    picked = [everything.index(c) for c in LAYOUTS[fitted[0]]]
    kinds: dict = {}
    for name in SETS:
        queries, whole, crop_scores, group_items = kept[name]
        kinds[name] = {}
        for kind in sorted({q["kind"] for q in queries}):
            rows = [i for i, q in enumerate(queries) if half(q["group"]) == 1 and q["kind"] == kind]
            relevant = [group_items.get(queries[i]["group"], set()) for i in rows]
            scores = whole[rows].copy()
            with_crops = np.maximum(scores, crop_scores[rows][:, picked, :].max(axis=1) - fitted[1]) if picked else scores
            kinds[name][kind] = {"none": measures(scores, relevant, threshold), "fitted": measures(with_crops, relevant, threshold)}
            a, b = kinds[name][kind]["none"], kinds[name][kind]["fitted"]
            print(f"{name} {kind}: R@1 {a['recall_at_1']:.3f} -> {b['recall_at_1']:.3f}, copy label recall "
                  f"{a['copy_label_recall']:.3f} -> {b['copy_label_recall']:.3f}, no-match labelled copy "
                  f"{a['negatives_labelled_copy']:.3f} -> {b['negatives_labelled_copy']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "threshold": threshold,
               "fitted": {"layout": fitted[0], "margin": fitted[1]}, "kinds_reporting_half": kinds,
               "halves": {name: {str(side): {layout: {str(m): v for m, v in margins.items()} for layout, margins in layouts.items()}
                                 for side, layouts in sides.items()} for name, sides in table.items()}}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
