"""Fit a model's "similar" threshold on one half of the evaluation queries, check it on the other.

A hit is labelled `similar` (not `weak`) from the score at which, on the category sets (product
categories, emoji drawn in other styles), at least half the hits are of the query's kind: the
lowest threshold whose hits at or above it have precision >= 0.5, the two sets weighing equally.
Below it, an answer's best hit is "no close match". The threshold is fitted on the queries whose
path hashes even and reported on the odd ones, with:
  - on the category sets: the precision of similar-or-better hits, and the share of queries whose
    right first hit is wrongly called "no close match";
  - on the copy set: how the answers of queries with a stored original and of negative queries
    (edits of photos that are not stored) split into copy / similar / no close match.

    python scripts/calibrate_labels.py --results bench-results/eval-DATE.json --row NAME --lookalike BIN

The results file is what `scripts/eval.py` writes: for each set, each row's `lookalike eval --json`
output (`make eval` runs this script on the default model's row).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

TARGET_PRECISION = 0.5
CATEGORY_SETS = ("categories", "emoji")


def half(path: str) -> int:
    return hashlib.sha1(path.encode()).digest()[0] % 2


def pairs(result: dict, part: int) -> list[tuple[float, bool]]:
    return [(score, correct) for query in result["queries"] if half(query["path"]) == part
            for score, correct in query["first_hits"]]


def precision_at(pairs_: list[tuple[float, bool]], threshold: float) -> float | None:
    kept = [correct for score, correct in pairs_ if score >= threshold]
    return sum(kept) / len(kept) if kept else None


def fit(results: dict[str, dict], part: int) -> float:
    """The lowest threshold at which the category sets' mean precision reaches the target."""
    per_set = {name: pairs(results[name], part) for name in CATEGORY_SETS if name in results}
    candidates = sorted({round(score, 4) for values in per_set.values() for score, _ in values}, reverse=True)
    best = None
    for threshold in candidates:
        precisions = [precision_at(values, threshold) for values in per_set.values()]
        if any(p is None for p in precisions):
            continue
        if sum(precisions) / len(precisions) >= TARGET_PRECISION:
            best = threshold
    if best is None:
        raise SystemExit("no threshold reaches the target precision on the fitting half")
    return best


def verdicts(result: dict, part: int, similar: float, duplicate: float) -> dict:
    counts = {"with_match": {"copy": 0, "similar": 0, "none": 0}, "negative": {"copy": 0, "similar": 0, "none": 0}}
    wrongly_none = right_first = 0
    for query in result["queries"]:
        if half(query["path"]) != part:
            continue
        hits = query["first_hits"]
        best = max((score for score, _ in hits), default=None)
        verdict = "none" if best is None or best < similar else ("copy" if best >= duplicate else "similar")
        counts["with_match" if query["match"] else "negative"][verdict] += 1
        if query["match"] and hits and hits[0][1]:
            right_first += 1
            wrongly_none += verdict == "none"
    shares = {}
    for group, tally in counts.items():
        total = sum(tally.values())
        if total:
            shares[group] = {verdict: round(count / total, 4) for verdict, count in tally.items()} | {"queries": total}
    shares["right_first_called_none"] = round(wrongly_none / right_first, 4) if right_first else None
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--row", required=True, help="the row (ranking) of the results to calibrate")
    parser.add_argument("--lookalike", required=True, help="the lookalike command, for the model's duplicate threshold")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    everything = json.loads(args.results.read_text())
    model = args.row.split(",")[0]
    listed = json.loads(subprocess.run([args.lookalike, "models", "--json"], capture_output=True, text=True, check=True).stdout)
    manifest = next((m for m in listed["models"] if m["name"] == model), None)
    if manifest is None or manifest["duplicate_threshold"] is None:
        raise SystemExit(f"model {model} is unknown or has no duplicate threshold")
    duplicate = manifest["duplicate_threshold"]
    results = {name: rows[args.row] for name, rows in everything.items()
               if name in ("copies",) + CATEGORY_SETS and args.row in rows}
    similar = fit(results, part=0)
    report = {"row": args.row, "similar_threshold": similar, "duplicate_threshold": duplicate,
              "similar_threshold_installed": manifest["similar_threshold"],
              "fitted_on": "queries whose path's SHA-1 starts with an even byte", "checked_on": "the others", "sets": {}}
    for name, result in results.items():
        entry = verdicts(result, 1, similar, duplicate)
        if name in CATEGORY_SETS:
            entry["similar_precision"] = round(precision_at(pairs(result, 1), similar) or 0.0, 4)
        report["sets"][name] = entry
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
