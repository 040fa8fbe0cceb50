"""Fits how region tiles count in a search: an item scores max(whole, best part - margin), and the
margin is chosen on one half of the queries and reported on the other.

The rule: the smallest margin whose whole-image queries lose at most one point against no tiles
on the fitting half (copies R@1 and µAP, categories mAP@R), which is then the margin with the most
parts found at rank 1 (regions and shifted sets) among those. Halves: queries of photos (groups)
whose MD5 is even fit, odd report; categories queries split by their path the same way.

Reads the vectors from the stores `scripts/eval_tiles.py` kept (bench-results/tiles-stores) and
embeds the queries once into stores of their own beside them.

    python scripts/fit_tiles.py --lookalike .build/release/lookalike [--data .data/eval] [--json OUT]
"""

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

ROOT = Path(__file__).resolve().parent.parent
MODEL = "efficientnet-lite0-gem"
PARTS = 5
MARGINS = [0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20, 0.30, float("inf")]
WHOLE_SETS = {"copies": ["recall_at_1", "micro_ap"], "categories": ["map_at_r"]}
PART_SETS = ["regions", "shifted"]


def read_manifest(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            entry["path"] = os.path.normpath(str(path.parent / entry["path"]))
            entries.append(entry)
    return entries


def vectors(store: Path, model: str) -> dict[str, np.ndarray]:
    """The model's vectors by content hash (files with the same bytes are one item)."""
    with sqlite3.connect(store / "catalog.sqlite") as db:
        rows = db.execute("SELECT i.content_hash, v.data FROM vector v JOIN item i ON i.id = v.item_id WHERE v.model = ?",
                          (model,)).fetchall()
    return {digest: np.frombuffer(blob, dtype=np.float32) for digest, blob in rows}


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def query_vectors(lookalike: str, paths: list[str], store: Path) -> dict[str, np.ndarray]:
    """Each query's whole-image vector (copies of one file's bytes share it)."""
    result = subprocess.run([lookalike, "add", *paths, "--store", str(store), "--model", MODEL, "--json"],
                            capture_output=True, text=True, check=False)
    if result.returncode not in (0, 2):
        sys.exit(f"adding the queries failed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    by_id = {}
    with sqlite3.connect(store / "catalog.sqlite") as db:
        for item_id, blob in db.execute("SELECT item_id, data FROM vector WHERE model = ?", (MODEL,)):
            by_id[item_id] = np.frombuffer(blob, dtype=np.float32)
    found = {os.path.normpath(a["path"]): by_id[a["id"]] for a in report["added"]}
    found.update({os.path.normpath(d["path"]): by_id[d["existing_id"]] for d in report["duplicates"]})
    return found


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def measures(scores: np.ndarray, relevant: list[set[int]], top: int = 100) -> dict:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    firsts, maps_r, pairs, positives = [], [], [], 0
    for row, wanted in enumerate(relevant):
        hits = order[row]
        positives += len(wanted)
        pairs += [(scores[row, h], h in wanted) for h in hits]
        if not wanted:
            continue
        firsts.append(hits[0] in wanted)
        r = len(wanted)
        found, total = 0, 0.0
        for rank, h in enumerate(hits[:r]):
            if h in wanted:
                found += 1
                total += found / (rank + 1)
        maps_r.append(total / r)
    pairs.sort(key=lambda p: (-p[0], p[1]))
    correct, area = 0, 0.0
    for position, (_, right) in enumerate(pairs):
        if right:
            correct += 1
            area += correct / (position + 1) / positives
    return {"recall_at_1": float(np.mean(firsts)), "map_at_r": float(np.mean(maps_r)), "micro_ap": area,
            "queries": len(relevant)}


def half(key: str) -> int:
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookalike", default=str(ROOT / ".build/release/lookalike"))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "eval")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "tiles-stores")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table: dict = {}  # set -> half -> margin -> measures
    for name in PART_SETS + list(WHOLE_SETS):
        entries = read_manifest(args.data / name / "manifest.jsonl")
        store = args.work / ("categories" if name == "categories" else "copies")
        whole, tiles = vectors(store, MODEL), vectors(store, MODEL + "#tiles")
        indexed = [e for e in entries if e["role"] != "query"]
        paths = [sha256(e["path"]) for e in indexed]
        missing = [p for p in paths if p not in whole or p not in tiles]
        if missing:
            sys.exit(f"{name}: {len(missing)} images have no vectors in {store} (run scripts/eval_tiles.py first): {missing[:3]}")
        gallery = unit(np.stack([whole[p] for p in paths]))
        parts = unit(np.stack([tiles[p].reshape(PARTS, -1) for p in paths]))  # items x parts x d
        group_items: dict[str, set[int]] = {}
        for index, entry in enumerate(indexed):
            if entry["role"] == "gallery":
                group_items.setdefault(entry["group"], set()).add(index)
        queries = [e for e in entries if e["role"] == "query"]
        qvectors = query_vectors(args.lookalike, [q["path"] for q in queries], args.work / f"queries-{name}")
        q = unit(np.stack([qvectors[e["path"]] for e in queries]))
        whole_scores = q @ gallery.T
        part_scores = np.einsum("qd,ipd->qip", q, parts).max(axis=2)
        table[name] = {}
        for side in (0, 1):
            rows = [i for i, e in enumerate(queries) if half(e["path"] if name == "categories" else e["group"]) == side]
            relevant = [group_items.get(queries[i]["group"], set()) for i in rows]
            table[name][side] = {}
            for margin in MARGINS:
                scores = whole_scores[rows] if margin == float("inf") else np.maximum(whole_scores[rows], part_scores[rows] - margin)
                table[name][side][margin] = measures(scores, relevant)
        print(f"{name}: {len(queries)} queries, {len(indexed)} indexed", flush=True)

    def acceptable(side: int, margin: float) -> bool:
        for name, keys in WHOLE_SETS.items():
            for key in keys:
                if table[name][side][margin][key] < table[name][side][float("inf")][key] - 0.01:
                    return False
        return True

    def parts_found(side: int, margin: float) -> float:
        return float(np.mean([table[name][side][margin]["recall_at_1"] for name in PART_SETS]))

    fitted = max((m for m in MARGINS if acceptable(0, m)), key=lambda m: (parts_found(0, m), -m))
    print(f"fitted margin on the fitting half: {fitted}")
    print("margin | " + " | ".join(f"{n} R@1" for n in PART_SETS) + " | copies R@1 | copies µAP | categories mAP@R  (reporting half)")
    for margin in MARGINS:
        cells = [table[n][1][margin]["recall_at_1"] for n in PART_SETS]
        cells += [table["copies"][1][margin]["recall_at_1"], table["copies"][1][margin]["micro_ap"],
                  table["categories"][1][margin]["map_at_r"]]
        mark = " <- fitted" if margin == fitted else ""
        print(f"{margin:6} | " + " | ".join(f"{c:.3f}" for c in cells) + mark)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"date": time.strftime("%Y-%m-%d"), "model": MODEL, "fitted_margin": None if fitted == float("inf") else fitted,
               "halves": {name: {str(side): {str(m): v for m, v in rows.items()} for side, rows in sides.items()}
                          for name, sides in table.items()}}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
