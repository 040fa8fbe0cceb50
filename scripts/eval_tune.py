#!/usr/bin/env python3
"""What `lookalike tune` gains, measured on the category sets of ``make eval-data``.

Two protocols on every set (Fashion-MNIST product categories, emoji concepts in five styles):

* **A, a collection's own labels.** Half of each class's items carry their label in the metadata
  (field ``category``), the other half carry none. ``lookalike tune --labels category`` learns from
  the labelled half (holding part of it out to choose its epoch); the measure is taken on the
  unlabelled half only: each unlabelled item searches the other unlabelled items, and the correct
  answers are those of its class (mAP@R, P@1, P@10).
* **B, new classes.** Half of the classes are labelled (all their items), the other half are not; the
  measure is taken on the classes never seen in training, as in the metric-learning literature.

Rows: the base model's vectors as stored; linear discriminant analysis fitted on the same labels
(scikit-learn, eigen solver with Ledoit-Wolf shrinkage, or the SVD solver where that one fails; the
closed-form baseline a learned metric must beat); ``tune`` with each of its losses. The tuned vectors are read from the store, as
``tune`` made them; the splits are seeded, and repeated over ``--seeds``.

Usage::

    python scripts/eval_tune.py --lookalike .build/release/lookalike --data .data/eval [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

SETS = {"categories": "categories/manifest.jsonl", "emoji": "emoji/manifest.jsonl"}
BASE = "efficientnet-lite0-gem"
# Each tuning as LOSS[@LEARNING_RATE][:HEAD] (no rate: tune's default; no head: both, the better kept).
TUNINGS = ["multi-similarity", "multi-similarity:linear", "multi-similarity:two-layer", "proxy"]


def load_set(data: str, name: str) -> list[tuple[str, str]]:
    path = os.path.join(data, SETS[name])
    folder = os.path.dirname(path)
    items = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            if entry.get("role") in ("query", "gallery"):
                items.append((os.path.abspath(os.path.join(folder, entry["path"])), str(entry["group"])))
    return items


def split(items: list[tuple[str, str]], protocol: str, seed: int) -> tuple[set[str], set[str]]:
    """The labelled paths and the test paths."""
    rng = random.Random(seed)
    by_class: dict[str, list[str]] = {}
    for path, label in items:
        by_class.setdefault(label, []).append(path)
    labelled: set[str] = set()
    test: set[str] = set()
    if protocol == "A":
        for label in sorted(by_class):
            paths = sorted(by_class[label])
            rng.shuffle(paths)
            half = len(paths) // 2
            labelled.update(paths[:half])
            test.update(paths[half:])
    else:
        classes = sorted(by_class)
        rng.shuffle(classes)
        for index, label in enumerate(classes):
            (labelled if index < len(classes) // 2 else test).update(by_class[label])
    return labelled, test


def run(command: list[str], ok=(0,)) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode not in ok:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command[:4])} ...")
    return result


def label_store(lookalike: str, store: str, items, labelled: set[str], work: str) -> None:
    """Adds every image (once; later calls only rewrite the metadata) with labels for `labelled`."""
    metadata = os.path.join(work, "metadata.jsonl")
    with open(metadata, "w", encoding="utf-8") as handle:
        for path, label in items:
            handle.write(json.dumps({"path": path, "category": label if path in labelled else None}) + "\n")
    run([lookalike, "add", *[path for path, _ in items], "--metadata", metadata, "--model", BASE, "--store", store, "--json"])


def vectors(store: str, model: str) -> dict[str, np.ndarray]:
    connection = sqlite3.connect(os.path.join(store, "catalog.sqlite"))
    rows = connection.execute(
        "SELECT item.source_path, vector.data FROM vector JOIN item ON item.id = vector.item_id WHERE vector.model = ?", (model,))
    found = {path: np.frombuffer(data, dtype="<f4").astype(np.float64) for path, data in rows}
    connection.close()
    return found


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def measures(matrix: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Leave-one-out within the test items: mAP@R, P@1, P@10."""
    x = unit(matrix)
    similarities = x @ x.T
    np.fill_diagonal(similarities, -np.inf)
    aps, p1, p10 = [], [], []
    for row in range(len(x)):
        relevant = int(np.sum(labels == labels[row])) - 1
        if relevant == 0:
            continue
        order = np.argsort(-similarities[row], kind="stable")
        hits = labels[order] == labels[row]
        top = hits[:relevant]
        precisions = np.cumsum(top) / np.arange(1, relevant + 1)
        aps.append(float(np.sum(precisions * top) / relevant))
        p1.append(float(hits[0]))
        p10.append(float(np.mean(hits[:10])))
    return {"map_at_r": float(np.mean(aps)), "p1": float(np.mean(p1)), "p10": float(np.mean(p10)), "queries": len(aps)}


def evaluate(lookalike: str, data: str, work: str, set_name: str, protocol: str, seed: int, tunings: list[str]) -> dict:
    items = load_set(data, set_name)
    labels = dict(items)
    labelled, test = split(items, protocol, seed)
    store = os.path.join(work, f"store-{set_name}")
    label_store(lookalike, store, items, labelled, work)
    base = vectors(store, BASE)
    test_paths = sorted(path for path in test if path in base)
    test_labels = np.array([labels[path] for path in test_paths])
    rows = {"base": measures(np.stack([base[path] for path in test_paths]), test_labels)}

    train_paths = sorted(path for path in labelled if path in base)
    started = time.time()
    train_x = np.stack([base[path] for path in train_paths])
    train_y = [labels[path] for path in train_paths]
    solver = "eigen"
    try:
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(train_x, train_y)
    except np.linalg.LinAlgError:
        # Many classes of few items (emoji: two labelled drawings per concept) leave the shrunk
        # within-class scatter singular for the eigen solver; the SVD solver copes.
        solver = "svd"
        lda = LinearDiscriminantAnalysis(solver="svd").fit(train_x, train_y)
    rows["lda"] = measures(lda.transform(np.stack([base[path] for path in test_paths])), test_labels)
    rows["lda"].update({"seconds": round(time.time() - started, 1), "solver": solver})

    for setting in tunings:
        setting_rest, _, head = setting.partition(":")
        loss, _, rate = setting_rest.partition("@")
        name = f"{protocol.lower()}-{loss}"
        started = time.time()
        extra = (["--learning-rate", rate] if rate else []) + (["--head", head] if head else [])
        result = run([lookalike, "tune", "--labels", "category", "--name", name, "--model", BASE, "--loss", loss,
                      "--seed", str(seed), "--replace", "--force", "--json", "--store", store, *extra])
        report = json.loads(result.stdout)
        tuned = vectors(store, f"{BASE}+{name}")
        row = measures(np.stack([tuned[path] for path in test_paths]), test_labels)
        row.update({"seconds": round(time.time() - started, 1), "held_out_base": report["baseline"],
                    "held_out_tuned": report["best"], "best_epoch": report["bestEpoch"], "epochs": len(report["epochs"]) - 1,
                    "labelled": report["labelledItems"], "head": report.get("head"),
                    "candidates": report.get("candidates")})
        rows[f"tune {setting}"] = row
    return {"set": set_name, "protocol": protocol, "seed": seed, "labelled": len(train_paths), "test": len(test_paths),
            "classes_in_test": len(set(test_labels)), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookalike", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", default=".data/eval/stores/tune")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--protocols", default="A,B")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--tunings", default=",".join(TUNINGS), help="LOSS[@LEARNING_RATE][:HEAD],...")
    parser.add_argument("--json")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = []
    for set_name in args.sets.split(","):
        for protocol in args.protocols.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                result = evaluate(os.path.abspath(args.lookalike), args.data, args.work, set_name, protocol, seed,
                                  args.tunings.split(","))
                results.append(result)
                print(f"{set_name} {protocol} seed {seed}: " + ", ".join(
                    f"{row} {values['map_at_r']:.3f}" for row, values in result["rows"].items()), flush=True)
    print()
    print("| set | protocol | ranking | mAP@R | P@1 | P@10 | held-out mAP@R (labelled part) | tuning s |")
    print("|---|---|---|---|---|---|---|---|")
    for set_name in args.sets.split(","):
        for protocol in args.protocols.split(","):
            runs = [r for r in results if r["set"] == set_name and r["protocol"] == protocol]
            for row in runs[0]["rows"]:
                values = [r["rows"][row] for r in runs]
                mean = {key: np.mean([v[key] for v in values]) for key in ("map_at_r", "p1", "p10")}
                spread = np.std([v["map_at_r"] for v in values])
                seconds = np.mean([v.get("seconds", 0) for v in values])
                held = (f"{np.mean([v['held_out_base'] for v in values]):.3f} → {np.mean([v['held_out_tuned'] for v in values]):.3f}"
                        if "held_out_tuned" in values[0] else "")
                print(f"| {set_name} | {protocol} | {row} | {mean['map_at_r']:.3f} ± {spread:.3f} | {mean['p1']:.3f} | "
                      f"{mean['p10']:.3f} | {held} | {seconds:.1f} |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"date": time.strftime("%Y-%m-%d"), "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
