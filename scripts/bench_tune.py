#!/usr/bin/env python3
"""What a tuning costs: `tune`'s trainer and projection against scikit-learn's LDA, same vectors.

For each row count: ROWS labelled vectors of DIMENSION values in CLASSES classes (seeded: each
class a random unit centre, each item its centre plus Gaussian noise, normalised, so that the base
ranking is far from perfect, as with real category labels). The Swift side (`lookalike-bench tune`)
trains `tune`'s default loss for a fixed number of epochs (early stopping is switched off, so every
run does the same work) and then projects every vector; the peer, in the same run, fits linear
discriminant analysis (eigen solver, Ledoit-Wolf shrinkage: the closed-form baseline of
docs/QUALITY.md) and transforms every vector. Times are wall-clock seconds on this machine's
cores; peak memory is each process's maximum resident set.

    python scripts/bench_tune.py --swift .build/release/lookalike-bench [--rows 10000,100000]
        [--dimension 1280] [--classes 100] [--epochs 5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis


def write_matrix(path: str, matrix: np.ndarray) -> None:
    """int32 rows, int32 columns, then the values (float32 or int32), little-endian."""
    with open(path, "wb") as handle:
        handle.write(np.array(matrix.shape, dtype="<i4").tobytes())
        handle.write(np.ascontiguousarray(matrix).tobytes())


def labelled_vectors(rows: int, dimension: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, classes, size=rows).astype(np.int32)
    # Noise of norm about 4 per item (the centre has norm 1): neighbours of another class often come first.
    vectors = centres[labels] + rng.standard_normal((rows, dimension)).astype(np.float32) * (4 / np.sqrt(dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype("<f4"), labels.astype("<i4")


def swift(binary: str, vectors: str, labels: str, epochs: int) -> dict:
    started = time.time()
    result = subprocess.run([binary, "tune", vectors, labels, "--epochs", str(epochs)], capture_output=True, text=True, check=True)
    events = {line["event"]: line for line in map(json.loads, result.stdout.splitlines())}
    events["process_seconds"] = time.time() - started
    events["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swift", required=True)
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--dimension", type=int, default=1280)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as work:
        for rows in [int(r) for r in args.rows.split(",")]:
            x, y = labelled_vectors(rows, args.dimension, args.classes, seed=rows)
            vectors, labels = os.path.join(work, "vectors.f32"), os.path.join(work, "labels.i32")
            write_matrix(vectors, x)
            write_matrix(labels, y.reshape(-1, 1))
            ours = swift(args.swift, vectors, labels, args.epochs)
            started = time.time()
            lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, y)
            fit = time.time() - started
            started = time.time()
            lda.transform(x)
            transform = time.time() - started
            peak_python = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            row = {"rows": rows, "dimension": args.dimension, "classes": args.classes, "epochs": args.epochs,
                   "tune_seconds": ours["tune"]["seconds"], "tune_seconds_per_epoch": ours["tune"]["seconds_per_epoch"],
                   "tune_held_out": [ours["tune"]["held_out_base"], ours["tune"]["held_out_best"]],
                   "project_seconds": ours["project"]["seconds"], "lookalike_peak_rss_mib": round(ours["peak_rss_mib"]),
                   "lda_fit_seconds": fit, "lda_transform_seconds": transform, "python_peak_rss_mib": round(peak_python)}
            results.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"| labelled vectors | tune: {args.epochs} epochs of each head | per epoch of one head | project all | LDA fit (scikit-learn) | LDA transform all |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['rows']:,} x {row['dimension']} | {row['tune_seconds']:.1f} s | {row['tune_seconds_per_epoch']:.2f} s | "
              f"{row['project_seconds']:.2f} s | {row['lda_fit_seconds']:.1f} s | {row['lda_transform_seconds']:.2f} s |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"date": time.strftime("%Y-%m-%d"), "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
