"""Region tiles (`add --tiles`): what they gain where a part of a photo is the query, what they
cost where the whole image is, and what they cost in time.

Rows, each through `lookalike eval`, with and without `--tiles`, on one store per gallery (the
store is added with tiles once; a row without `--tiles` scores whole images only):
- regions: the four quarters and the central ninth of each gallery photo of the copies set;
- shifted: a half-size and a third-size part of each gallery photo at a seeded random place (not
  on the grid the tiles are cut on);
- copies: edited copies of whole photos, negatives included (R@1, µAP);
- categories and emoji: whole-image similarity (mAP@R).
Cost: `lookalike add` of the copies set's gallery photos into fresh stores, with and without
tiles (images/s), vectors per image, and the time per query of the rows above.

    python scripts/eval_tiles.py --lookalike .build/release/lookalike [--data .data/eval] [--json OUT]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "efficientnet-lite0-gem"


def run_eval(lookalike: str, manifest: Path, store: Path, tiles: bool) -> dict:
    command = [lookalike, "eval", str(manifest), "--json", "--top", "100", "--model", MODEL, "--store", str(store)]
    if tiles:
        command.append("--tiles")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def timed_add(lookalike: str, folder: Path, tiles: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="lookalike-tiles-") as scratch:
        command = [lookalike, "add", "-r", str(folder), "--store", str(Path(scratch) / "store"), "--model", MODEL, "--json"]
        if tiles:
            command.append("--tiles")
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        if result.returncode not in (0, 2):
            sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
        added = len(json.loads(result.stdout)["added"])
        return {"images": added, "seconds": round(seconds, 2), "images_per_second": round(added / seconds, 2)}


def row(result: dict) -> dict:
    overall = result["overall"]
    out = {key: overall.get(key) for key in ["recall_at_1", "recall_at_10", "map", "map_at_r", "precision_at_10", "queries"]}
    out["micro_ap"] = overall["pairs"]["micro_average_precision"]
    out["recall_at_precision_0.9"] = overall["pairs"]["recall_at_precision_0.9"]
    out["seconds"] = result["seconds"]
    out["kinds"] = {kind: {"queries": summary.get("queries"), "recall_at_1": summary.get("recall_at_1"),
                           "map": summary.get("map")} for kind, summary in result.get("by_kind", {}).items()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookalike", default=str(ROOT / ".build/release/lookalike"))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "eval")
    parser.add_argument("--sets", default="regions,shifted,copies,categories,emoji")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "tiles-stores",
                        help="stores kept between runs (vectors are reused)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict = {"date": time.strftime("%Y-%m-%d"), "model": MODEL, "sets": {}}
    args.work.mkdir(parents=True, exist_ok=True)
    for name in [s for s in args.sets.split(",") if s]:
        manifest = args.data / name / "manifest.jsonl"
        if not manifest.exists():
            sys.exit(f"{manifest} is missing: run `make eval-data`")
        # The copies, regions and shifted sets index the same images: one store serves them.
        store = args.work / ("copies" if name in ("copies", "regions", "shifted") else name)
        with_tiles = row(run_eval(args.lookalike, manifest, store, True))
        without = row(run_eval(args.lookalike, manifest, store, False))
        results["sets"][name] = {"whole": without, "tiles": with_tiles}
        print(f"{name}: whole R@1 {without['recall_at_1']:.3f} mAP@R {without['map_at_r']:.3f} µAP {without['micro_ap']:.3f}"
              f" | tiles R@1 {with_tiles['recall_at_1']:.3f} mAP@R {with_tiles['map_at_r']:.3f} µAP {with_tiles['micro_ap']:.3f}",
              flush=True)
        for kind in sorted(without["kinds"]):
            print(f"  {kind}: R@1 {without['kinds'][kind]['recall_at_1']:.3f} -> {with_tiles['kinds'][kind]['recall_at_1']:.3f}"
                  f" ({without['kinds'][kind]['queries']} queries)", flush=True)
    gallery = args.data / "copies" / "gallery"
    if gallery.exists():
        results["add"] = {"whole": timed_add(args.lookalike, gallery, False), "tiles": timed_add(args.lookalike, gallery, True)}
        print(f"add {results['add']['whole']['images']} photos: {results['add']['whole']['images_per_second']} images/s whole, "
              f"{results['add']['tiles']['images_per_second']} with tiles", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
