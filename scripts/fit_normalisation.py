"""Fits copy-score normalisation: a query's scores less a share (beta) of the mean score of its
own k-th to l-th nearest images in the collection (the SSCD paper's background normalisation,
with the collection as the background). Within one query the order is unchanged; across queries
a score means more: a query that resembles everything (a dark starry sky) loses more than one
that resembles nothing.

beta and the window are chosen on one half of the photos (by µAP over both sets) and reported on
the other, with the copy threshold refitted on the fitting half (the lowest score keeping
precision at 0.99) and its precision, recall and no-match queries labelled "copy" reported on
the other half, beside the same for raw scores.

Reads the vectors `scripts/fit_crops.py` stored (bench-results/crops-stores); with --crops, the
scores are those with its fitted crops (from its --json output).

    python scripts/fit_normalisation.py [--model sscd] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_crops  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BETAS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
WINDOWS = [(5, 15), (10, 20), (20, 40)]
TOP = 100


def ranked(scores: np.ndarray, top: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return order, np.take_along_axis(scores, order, axis=1)


def pairs_of(order, values, relevant):
    return [(values[r, j], order[r, j] in wanted) for r, wanted in enumerate(relevant) for j in range(order.shape[1])]


def threshold_at(pairs: list[tuple[float, bool]], precision: float = 0.99) -> float:
    """The lowest score from which the pairs at or above it are right at least `precision` of the time."""
    pairs = sorted(pairs, key=lambda p: (-p[0], p[1]))
    correct, best = 0, float("inf")
    for position, (score, right) in enumerate(pairs):
        correct += right
        if right and correct / (position + 1) >= precision:
            best = score
    return best


def labels(order, values, relevant, threshold):
    """Precision and recall of the copy label on each query's first hit, and the share of no-match
    queries whose first hit is labelled copy."""
    labelled = right = positives = negatives = false_negatives = 0
    for r, wanted in enumerate(relevant):
        copy = values[r, 0] >= threshold
        if wanted:
            positives += 1
            right += copy and order[r, 0] in wanted
        else:
            negatives += 1
            false_negatives += copy
        labelled += copy
    return {"precision": right / max(1, labelled), "recall": right / max(1, positives),
            "negatives_labelled_copy": false_negatives / max(1, negatives)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "eval")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "crops-stores")
    parser.add_argument("--model", default="sscd")
    parser.add_argument("--sets", default=",".join(fit_crops.SETS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sides: dict = {0: [], 1: []}  # side -> [(set, order, values, relevant)]
    for name in args.sets.split(","):
        entries = fit_crops.read_manifest(args.data / name / "manifest.jsonl")
        indexed = [e for e in entries if e["role"] != "query"]
        queries = [e for e in entries if e["role"] == "query"]
        stored = fit_crops.stored_vectors(args.work / f"indexed-{args.model}", args.model, [e["path"] for e in indexed])
        found = fit_crops.stored_vectors(args.work / f"queries-{args.model}", args.model, [q["path"] for q in queries])
        gallery = fit_crops.unit(np.stack([stored[e["path"]] for e in indexed]))
        scores = fit_crops.unit(np.stack([found[q["path"]] for q in queries])) @ gallery.T
        group_items: dict[str, set[int]] = {}
        for index, entry in enumerate(indexed):
            if entry["role"] == "gallery":
                group_items.setdefault(entry["group"], set()).add(index)
        order, values = ranked(scores)
        for side in (0, 1):
            rows = [i for i, q in enumerate(queries) if fit_crops.half(q["group"]) == side]
            sides[side].append((name, order[rows], values[rows], [group_items.get(queries[i]["group"], set()) for i in rows]))

    def normalised(values, beta, window):
        low, high = window
        return values - beta * values[:, low - 1:high].mean(axis=1, keepdims=True)

    def score(side, beta, window):
        pairs, positives = [], 0
        for _, order, values, relevant in sides[side]:
            pairs += pairs_of(order, normalised(values, beta, window), relevant)
            positives += sum(len(r) for r in relevant)
        return fit_crops.micro_ap(pairs, positives), pairs

    grid = [(beta, window) for beta in BETAS for window in WINDOWS]
    fitted = max(grid, key=lambda c: (round(score(0, *c)[0], 6), -c[0]))
    print(f"fitted on the fitting half: beta {fitted[0]}, neighbours {fitted[1][0]} to {fitted[1][1]}")
    report: dict = {}
    for label, (beta, window) in [("raw", (0.0, (5, 15))), ("normalised", fitted)]:
        _, fit_pairs = score(0, beta, window)
        threshold = threshold_at(fit_pairs)
        report[label] = {"beta": beta, "window": list(window), "threshold": float(threshold), "sets": {}}
        for name, order, values, relevant in sides[1]:
            shifted = normalised(values, beta, window)
            positives = sum(len(r) for r in relevant)
            judged = [r for r in range(len(relevant)) if relevant[r]]
            measured = {"micro_ap": fit_crops.micro_ap(pairs_of(order, shifted, relevant), positives),
                        "recall_at_1": float(np.mean([order[r, 0] in relevant[r] for r in judged])),
                        **labels(order, shifted, relevant, threshold)}
            report[label]["sets"][name] = measured
            print(f"{label:10} {name:7} threshold {threshold:.3f}: µAP {measured['micro_ap']:.3f}, R@1 {measured['recall_at_1']:.3f}, "
                  f"copy label precision {measured['precision']:.3f} recall {measured['recall']:.3f}, "
                  f"no-match labelled copy {measured['negatives_labelled_copy']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "model": args.model,
                                         "fitted": {"beta": fitted[0], "window": list(fitted[1])}, "reporting_half": report},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
