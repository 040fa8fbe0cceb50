"""ANN benchmark (not a test): Lookalike's HNSW against hnswlib and FAISS, same vectors, same run.

For each engine: build an HNSW graph with the same M and efConstruction on one thread, then
answer the queries one at a time on one thread for a sweep of efSearch, measuring recall@10
against exact search, queries per second and p50/p99 latency. Writes a Markdown table and a
recall-versus-QPS chart (PNG) into bench-results/.

Data: either real embeddings (`--vectors FILE.npy`, N x D float32, e.g. Lookalike's own
embeddings of package images; `--queries` rows, chosen with a fixed seed, are held out as queries)
or a synthetic clustered set (each vector a cluster centre plus a point of the cluster's own
low-dimensional subspace plus noise, like real embeddings). Cosine similarity.

    python scripts/bench_ann.py --rows 100000 --dimension 128 [--queries 1000] [--m 16]
        [--ef-construction 200] [--ef 16,32,64,128,256] [--repeats 3] --swift .build/release/lookalike-bench
    python scripts/bench_ann.py --vectors .data/bench/embeddings/vectors.npy --name real ...
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"


def clustered(rows: int, dimension: int, clusters: int, seed: int, intrinsic: int = 32) -> np.ndarray:
    """Cluster centre + a point of the cluster's own `intrinsic`-dimensional subspace + noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (clusters, dimension)).astype(np.float32)
    rank = min(intrinsic, dimension)
    bases = (rng.normal(0, 1, (clusters, rank, dimension)) / np.sqrt(rank)).astype(np.float32)
    out = np.empty((rows, dimension), dtype=np.float32)
    for start in range(0, rows, 50_000):
        stop = min(rows, start + 50_000)
        which = np.arange(start, stop) % clusters
        weights = rng.normal(0, 1, (stop - start, rank)).astype(np.float32)
        out[start:stop] = centres[which] + np.einsum("nr,nrd->nd", weights, bases[which])
        out[start:stop] += 0.15 * rng.normal(0, 1, (stop - start, dimension)).astype(np.float32)
    return out


def normalised(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_matrix(path: Path, matrix: np.ndarray) -> None:
    """int32 rows, int32 columns, then the values (float32 or int32), little-endian."""
    with open(path, "wb") as f:
        f.write(np.array(matrix.shape, dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(matrix).tobytes())


def ground_truth(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(normalised(base))
    _, labels = index.search(normalised(queries), k)
    return labels.astype(np.int32)


def sweep(name: str, search_one, set_ef, queries: np.ndarray, truth: np.ndarray, efs: list[int], k: int,
          repeats: int) -> list[dict]:
    """Each efSearch runs `repeats` times over all queries; the run with the median QPS is reported."""
    rows = []
    for ef in efs:
        set_ef(ef)
        runs = []
        for _ in range(repeats):
            latencies = np.empty(len(queries))
            found = 0
            start = time.perf_counter()
            for i, query in enumerate(queries):
                before = time.perf_counter()
                labels = search_one(query[None, :])
                latencies[i] = time.perf_counter() - before
                found += len(set(labels.tolist()) & set(truth[i, :k].tolist()))
            total = time.perf_counter() - start
            runs.append({"engine": name, "event": "search", "ef": ef, "recall": found / (len(queries) * k),
                         "qps": len(queries) / total, "p50_ms": float(np.percentile(latencies, 50) * 1000),
                         "p99_ms": float(np.percentile(latencies, 99) * 1000), "repeats": repeats})
        rows.append(sorted(runs, key=lambda run: run["qps"])[len(runs) // 2])
    return rows


def run_hnswlib(base, queries, truth, args) -> list[dict]:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=args.m, ef_construction=args.ef_construction, random_seed=42)
    index.set_num_threads(1)
    start = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=1)
    build = {"engine": "hnswlib", "event": "build", "seconds": time.perf_counter() - start}
    return [build] + sweep("hnswlib", lambda q: index.knn_query(q, k=args.k, num_threads=1)[0][0], index.set_ef,
                           queries, truth, args.ef, args.k, args.repeats)


def run_faiss(base, queries, truth, args) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(base.shape[1], args.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    start = time.perf_counter()
    index.add(normalised(base))
    build = {"engine": "faiss", "event": "build", "seconds": time.perf_counter() - start}

    def set_ef(ef: int) -> None:
        index.hnsw.efSearch = ef

    return [build] + sweep("faiss", lambda q: index.search(normalised(q), args.k)[1][0], set_ef,
                           normalised(queries), truth, args.ef, args.k, args.repeats)


def run_swift(files: dict[str, Path], args, encoding: str) -> list[dict]:
    command = [args.swift, str(files["base"]), str(files["queries"]), str(files["truth"]), "--m", str(args.m),
               "--ef-construction", str(args.ef_construction), "--ef", ",".join(map(str, args.ef)), "--k", str(args.k),
               "--repeats", str(args.repeats), "--encoding", encoding]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in output.splitlines() if line.strip()]
    rows.append({"engine": rows[0]["engine"], "event": "memory",
                 "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})
    return rows


def in_child(function, *arguments) -> list[dict]:
    """Runs one peer in a forked child, so each engine's peak memory is its own."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        rows = function(*arguments)
        if not any(r["event"] == "memory" for r in rows):
            rows.append({"engine": rows[0]["engine"], "event": "memory",
                         "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        with os.fdopen(write, "w") as out:
            json.dump(rows, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as source:
        rows = json.load(source)
    os.waitpid(pid, 0)
    return rows


def table(rows: list[dict], args) -> str:
    builds = {r["engine"]: r for r in rows if r["event"] == "build"}
    memory = {r["engine"]: r for r in rows if r["event"] == "memory"}
    lines = [
        f"{args.description}, {args.queries} queries, M {args.m}, "
        f"efConstruction {args.ef_construction}, k {args.k}, one thread, one query at a time, "
        f"median of {args.repeats} runs per efSearch.",
        "",
        "| engine | build (s) | peak RSS (MB) | index (MB) | vectors in the index (MB) |",
        "|---|---|---|---|---|",
    ]
    for engine, build in builds.items():
        rss = memory.get(engine, {}).get("peak_rss_mb")
        index = f"{build['memory_bytes'] / 1e6:.1f}" if "memory_bytes" in build else ""
        vectors = f"{build['vector_bytes'] / 1e6:.1f}" if "vector_bytes" in build else ""
        lines.append(f"| {engine} | {build['seconds']:.1f} | {rss:.0f} | {index} | {vectors} |" if rss
                     else f"| {engine} | {build['seconds']:.1f} | | {index} | {vectors} |")
    for r in rows:
        if r["event"] == "snapshot":
            first = f" (first open {r['open_seconds_first']:.2f} s)" if "open_seconds_first" in r else ""
            lines += ["", f"{r['engine']} snapshot: {r['bytes'] / 1e6:.0f} MB, written in {r['save_seconds']:.2f} s, "
                          f"opened (memory map, checksums, load) in {r['open_seconds']:.2f} s, median of 3{first}."]
    lines += ["", "| engine | efSearch | recall@10 | QPS | p50 (ms) | p99 (ms) |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["event"] == "search":
            lines.append(f"| {r['engine']} | {r['ef']} | {r['recall']:.3f} | {r['qps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    return "\n".join(lines)


def chart(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for engine in sorted({r["engine"] for r in rows}):
        points = [r for r in rows if r["engine"] == engine and r["event"] == "search"]
        axes.plot([p["recall"] for p in points], [p["qps"] for p in points], marker="o", label=engine)
    axes.set_xlabel("recall@10")
    axes.set_ylabel("queries per second (one thread)")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=Path, help="real vectors (.npy, N x D float32) instead of synthetic ones")
    parser.add_argument("--name", default="", help="a name for the data set in result file names")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128, 256])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs per efSearch; the median is reported")
    parser.add_argument("--swift", required=True, help="the lookalike-bench executable")
    parser.add_argument("--encodings", type=lambda s: s.split(","), default=["float32", "int8", "float16"],
                        help="vector encodings of our index to run (compressed ones re-score from float32)")
    parser.add_argument("--peers", type=lambda s: [p for p in s.split(",") if p], default=["hnswlib", "faiss"])
    args = parser.parse_args()

    if args.vectors:
        real = np.load(args.vectors, mmap_mode="r")
        args.rows, args.dimension = real.shape[0] - args.queries, real.shape[1]
        label = args.name or args.vectors.parent.name
        args.description = f"{args.rows:,} x {args.dimension}-d real embeddings ({label})"
        work = args.vectors.parent / f"ann-q{args.queries}"
    else:
        label = args.name or "clustered"
        args.description = f"{args.rows:,} x {args.dimension}-d clustered vectors"
        work = Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "bench" / f"ann-{args.rows}x{args.dimension}-q{args.queries}"
    work.mkdir(parents=True, exist_ok=True)
    files = {"base": work / "base.f32", "queries": work / "queries.f32", "truth": work / f"truth-k{args.k}.i32"}
    if not all(path.exists() for path in files.values()):
        if args.vectors:
            data = np.asarray(real, dtype=np.float32)
            order = np.random.default_rng(11).permutation(len(data))
            base, queries = data[np.sort(order[args.queries:])], data[np.sort(order[: args.queries])]
        else:
            data = clustered(args.rows + args.queries, args.dimension, clusters=max(10, args.rows // 200), seed=7)
            base, queries = data[: args.rows], data[args.rows :]
        write_matrix(files["base"], base)
        write_matrix(files["queries"], queries)
        write_matrix(files["truth"], ground_truth(base, queries, args.k))
    base = np.fromfile(files["base"], dtype="<f4", offset=8).reshape(args.rows, args.dimension)
    queries = np.fromfile(files["queries"], dtype="<f4", offset=8).reshape(args.queries, args.dimension)
    truth = np.fromfile(files["truth"], dtype="<i4", offset=8).reshape(args.queries, args.k)

    rows = []
    for encoding in args.encodings:
        rows += in_child(run_swift, files, args, encoding)
    if "hnswlib" in args.peers:
        rows += in_child(run_hnswlib, base, queries, truth, args)
    if "faiss" in args.peers:
        rows += in_child(run_faiss, base, queries, truth, args)

    RESULTS.mkdir(exist_ok=True)
    day = datetime.date.today().isoformat()
    stem = f"ann-{label}-{args.rows}x{args.dimension}-{day}"
    text = table(rows, args)
    (RESULTS / f"{stem}.md").write_text(text + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    chart(rows, RESULTS / f"{stem}.png", f"HNSW, {args.description}, M {args.m}, efC {args.ef_construction}")
    print(text)
    print(f"\nchart: {RESULTS / (stem + '.png')}")


if __name__ == "__main__":
    sys.exit(main())
