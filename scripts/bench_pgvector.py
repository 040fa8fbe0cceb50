"""Store benchmark (not a test): pgvector's HNSW in PostgreSQL against Lookalike's own HNSW, same
vectors, same run, unfiltered and with filters passing 10% and 1% of the rows.

Lookalike's index runs in-process (`lookalike-bench`, one thread, the float32 and int8 graphs);
pgvector runs in a throwaway PostgreSQL 18 started by scripts/postgres.sh, built on one thread
(max_parallel_maintenance_workers 0) and queried by one client over loopback, one query at a time,
so its figures include a round trip and the statement's planning: what the PostgreSQL store pays.
Filters pass 10% or 1% of the rows: by default those whose index hashes below 2^32/10 or 2^32/100
(Knuth's multiplicative hash), spread over the data; with `--filter modulo`, the rows whose index is
a multiple of 10 or 100, which on the clustered sets (row i in cluster i mod C) keeps whole clusters
and drops the others: a filter correlated with where the query lies. pgvector applies them in the
same statement with iterative index scans (relaxed order, re-sorted), our index with its filtered
search. Recall@10 is against exact search among the rows that pass.

    python scripts/bench_pgvector.py --rows 1000000 --dimension 128 --swift .build/release/lookalike-bench
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ann  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = ROOT / "scripts" / "postgres.sh"


def passing(count: int, every: int, kind: str) -> np.ndarray:
    """Whether each row passes a filter keeping one row in `every` (see the module's text)."""
    rows = np.arange(count, dtype=np.uint64)
    if kind == "modulo":
        return rows % every == 0
    hashed = (rows * np.uint64(2_654_435_761)) & np.uint64(0xFFFFFFFF)
    return hashed < np.uint64(0xFFFFFFFF // every)


def filtered_truth(base: np.ndarray, queries: np.ndarray, k: int, every: int, kind: str) -> np.ndarray:
    """Exact neighbours among the rows that pass, as row indices."""
    import faiss

    rows = np.nonzero(passing(len(base), every, kind))[0]
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(bench_ann.normalised(base[rows]))
    _, labels = index.search(bench_ann.normalised(queries), k)
    return rows[labels].astype(np.int32)


def vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]"


def run_pgvector(base, queries, truths, args) -> list[dict]:
    import psycopg

    folder = Path(tempfile.mkdtemp(prefix="lookalike-bench-pg."))
    os.chmod(folder, 0o755)  # the server's own user must reach its cluster
    cluster = folder / "cluster"
    url = subprocess.run(["bash", str(POSTGRES), "start", str(cluster)], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    rows: list[dict] = []
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ALTER SYSTEM SET maintenance_work_mem = '12GB'")
            connection.execute("ALTER SYSTEM SET max_parallel_maintenance_workers = 0")
            connection.execute("ALTER SYSTEM SET shared_buffers = '4GB'")
        subprocess.run(["bash", str(POSTGRES), "stop", str(cluster)], check=True, capture_output=True)
        subprocess.run(["bash", str(POSTGRES), "resume", str(cluster)], check=True, capture_output=True)
        with psycopg.connect(url, autocommit=True) as connection:
            dimension = base.shape[1]
            connection.execute(f"CREATE TABLE bench (id integer PRIMARY KEY, every10 boolean, every100 boolean, "
                               f"vec vector({dimension}))")
            start = time.perf_counter()
            tenth, hundredth = passing(len(base), 10, args.filter), passing(len(base), 100, args.filter)
            with connection.cursor().copy("COPY bench (id, every10, every100, vec) FROM STDIN") as copy:
                for row, vector in enumerate(base):
                    copy.write_row((row, bool(tenth[row]), bool(hundredth[row]), vector_text(vector)))
            load = time.perf_counter() - start
            start = time.perf_counter()
            connection.execute(f"CREATE INDEX bench_hnsw ON bench USING hnsw (vec vector_cosine_ops) "
                               f"WITH (m = {args.m}, ef_construction = {args.pg_ef_construction})")
            build = time.perf_counter() - start
            connection.execute("VACUUM ANALYZE bench")
            index_bytes = connection.execute("SELECT pg_relation_size('bench_hnsw')").fetchone()[0]
            table_bytes = connection.execute("SELECT pg_total_relation_size('bench') - pg_relation_size('bench_hnsw')").fetchone()[0]
            rows.append({"engine": "pgvector", "event": "build", "seconds": build, "load_seconds": load,
                         "memory_bytes": index_bytes, "table_bytes": table_bytes,
                         "ef_construction": args.pg_ef_construction})
            connection.execute("SET hnsw.iterative_scan = relaxed_order")
            connection.execute("SET hnsw.max_scan_tuples = 100000")
            texts = [vector_text(query) for query in queries]
            for every, truth in truths.items():
                condition = {1: "", 10: "WHERE every10", 100: "WHERE every100"}[every]
                for ef in args.pg_ef:
                    # A relaxed-order scan returns neighbours roughly in order: take ef_search of
                    # them, then the k nearest (pgvector's advice for iterative scans).
                    sql = (f"WITH candidates AS MATERIALIZED (SELECT id, vec <=> %s::vector AS distance FROM bench {condition} "
                           f"ORDER BY distance LIMIT {max(ef, args.k)}) SELECT id FROM candidates ORDER BY distance LIMIT {args.k}")
                    connection.execute(f"SET hnsw.ef_search = {ef}")
                    runs = []
                    for _ in range(args.repeats):
                        latencies = np.empty(len(queries))
                        found = 0
                        started = time.perf_counter()
                        for i, text in enumerate(texts):
                            before = time.perf_counter()
                            ids = [r[0] for r in connection.execute(sql, (text,), prepare=True).fetchall()]
                            latencies[i] = time.perf_counter() - before
                            found += len(set(ids) & set(truth[i, : args.k].tolist()))
                        total = time.perf_counter() - started
                        runs.append({"engine": "pgvector", "event": "search", "ef": ef, "filter_every": every,
                                     "recall": found / (len(queries) * args.k), "qps": len(queries) / total,
                                     "p50_ms": float(np.percentile(latencies, 50) * 1000),
                                     "p99_ms": float(np.percentile(latencies, 99) * 1000), "repeats": args.repeats})
                    rows.append(sorted(runs, key=lambda run: run["qps"])[len(runs) // 2])
                    print(json.dumps(rows[-1]), file=sys.stderr)
        status = subprocess.run(["ps", "-o", "rss=", "-C", "postgres"], capture_output=True, text=True).stdout
        rows.append({"engine": "pgvector", "event": "memory",
                     "peak_rss_mb": sum(int(x) for x in status.split()) / 1024})
    finally:
        subprocess.run(["bash", str(POSTGRES), "stop", str(cluster)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def run_ours(files: dict[str, Path], truth_files: dict[int, Path], args, encoding: str) -> list[dict]:
    filtered = ",".join(f"{every}={path}" for every, path in truth_files.items() if every > 1)
    command = [args.swift, str(files["base"]), str(files["queries"]), str(truth_files[1]), "--m", str(args.m),
               "--ef-construction", str(args.ef_construction), "--ef", ",".join(map(str, args.ef)), "--k", str(args.k),
               "--repeats", str(args.repeats), "--encoding", encoding, "--filtered", filtered, "--filter", args.filter]
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    print(f"{encoding}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def table(rows: list[dict], args) -> str:
    lines = [f"{args.description}, {args.queries} queries, k {args.k}, one thread, one query at a time, "
             f"median of {args.repeats} runs. Ours: M {args.m}, efConstruction {args.ef_construction}; "
             f"pgvector: m {args.m}, ef_construction {args.pg_ef_construction}.", "",
             "| engine | build (s) | index (MB) | other |", "|---|---|---|---|"]
    for row in rows:
        if row["event"] == "build":
            other = (f"COPY {row['load_seconds']:.1f} s, table {row['table_bytes'] / 1e6:.0f} MB"
                     if "load_seconds" in row else f"vectors {row.get('vector_bytes', 0) / 1e6:.0f} MB")
            lines.append(f"| {row['engine']} | {row['seconds']:.1f} | {row['memory_bytes'] / 1e6:.1f} | {other} |")
    lines += ["", "| engine | filter | efSearch | recall@10 | QPS | p50 (ms) | p99 (ms) |", "|---|---|---|---|---|---|---|"]
    names = {1: "none", 10: "10%", 100: "1%"}
    for row in sorted((r for r in rows if r["event"] == "search"), key=lambda r: (r.get("filter_every", 1), r["engine"], r["ef"])):
        lines.append(f"| {row['engine']} | {names[row.get('filter_every', 1)]} | {row['ef']} | {row['recall']:.3f} | "
                     f"{row['qps']:.0f} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--pg-ef-construction", type=int, default=64, help="pgvector's own default")
    parser.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128])
    parser.add_argument("--pg-ef", type=lambda s: [int(x) for x in s.split(",")], default=[40, 80, 160, 320])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encodings", type=lambda s: s.split(","), default=["float32", "int8"])
    parser.add_argument("--filter", choices=["hash", "modulo"], default="hash",
                        help="which rows the 10%% and 1%% filters keep (see above)")
    parser.add_argument("--swift", required=True, help="the lookalike-bench executable")
    args = parser.parse_args()
    args.description = f"{args.rows:,} x {args.dimension}-d clustered vectors, {args.filter} filters"

    work = Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "bench" / f"ann-{args.rows}x{args.dimension}-q{args.queries}"
    work.mkdir(parents=True, exist_ok=True)
    files = {"base": work / "base.f32", "queries": work / "queries.f32", "truth": work / f"truth-k{args.k}.i32"}
    if not all(path.exists() for path in files.values()):
        data = bench_ann.clustered(args.rows + args.queries, args.dimension, clusters=max(10, args.rows // 200), seed=7)
        bench_ann.write_matrix(files["base"], data[: args.rows])
        bench_ann.write_matrix(files["queries"], data[args.rows:])
        bench_ann.write_matrix(files["truth"], bench_ann.ground_truth(data[: args.rows], data[args.rows:], args.k))
    base = np.fromfile(files["base"], dtype="<f4", offset=8).reshape(args.rows, args.dimension)
    queries = np.fromfile(files["queries"], dtype="<f4", offset=8).reshape(args.queries, args.dimension)
    truth_files = {1: files["truth"]}
    for every in (10, 100):
        path = work / f"truth-k{args.k}-{args.filter}{every}.i32"
        if not path.exists():
            bench_ann.write_matrix(path, filtered_truth(base, queries, args.k, every, args.filter))
        truth_files[every] = path
    truths = {every: np.fromfile(path, dtype="<i4", offset=8).reshape(args.queries, args.k)
              for every, path in truth_files.items()}

    rows = []
    for encoding in args.encodings:
        rows += run_ours(files, truth_files, args, encoding)
    rows += run_pgvector(base, queries, truths, args)

    bench_ann.RESULTS.mkdir(exist_ok=True)
    stem = f"pgvector-{args.rows}x{args.dimension}-{args.filter}-{datetime.date.today().isoformat()}"
    text = table(rows, args)
    (bench_ann.RESULTS / f"{stem}.md").write_text(text + "\n")
    (bench_ann.RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
