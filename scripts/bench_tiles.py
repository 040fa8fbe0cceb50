"""What region tiles cost: `lookalike add` of the copies set's gallery photos with and without
`--tiles` (wall time and peak RSS from GNU time, runs interleaved), and the latency of a warm
server's search with an image, tiles on and off, on the store `scripts/eval_tiles.py` kept (the
copies set's 3,220 images, with tiles).

    python scripts/bench_tiles.py --lookalike .build/release/lookalike [--runs 3] [--queries 40]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed_add(lookalike: str, folder: Path, tiles: bool) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-tiles-") as scratch:
        command = ["/usr/bin/time", "-f", "%e %M", lookalike, "add", "-r", str(folder), "--store", str(Path(scratch) / "s"), "--json"]
        if tiles:
            command.append("--tiles")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode not in (0, 2):
            sys.exit(f"add failed: {result.stderr[-2000:]}")
        seconds, kilobytes = result.stderr.strip().splitlines()[-1].split()
        return float(seconds), int(kilobytes) // 1024, len(json.loads(result.stdout)["added"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookalike", default=str(ROOT / ".build/release/lookalike"))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data")) / "eval")
    parser.add_argument("--store", type=Path, default=ROOT / "bench-results" / "tiles-stores" / "copies")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    if not (args.store / "catalog.sqlite").exists():
        sys.exit(f"{args.store} holds no store: run `python scripts/eval_tiles.py --sets copies` (part of `make eval`) first")
    gallery = args.data / "copies" / "gallery"
    rows: dict[bool, list[tuple[float, int, int]]] = {False: [], True: []}
    for _ in range(args.runs):
        for tiles in (False, True):
            rows[tiles].append(timed_add(args.lookalike, gallery, tiles))
    for tiles, runs in rows.items():
        seconds = [r[0] for r in runs]
        images = runs[0][2]
        print(f"add {images} photos {'with tiles' if tiles else 'whole only'}: median {statistics.median(seconds):.2f} s "
              f"({images / statistics.median(seconds):.1f} images/s; runs {', '.join(f'{s:.2f}' for s in seconds)}), "
              f"peak RSS {max(r[1] for r in runs)} MB", flush=True)

    queries = sorted((args.data / "shifted" / "queries").glob("*.jpg"))[: args.queries]
    port = free_port()
    server = subprocess.Popen([args.lookalike, "serve", "--store", str(args.store), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/v1/collections/default/search?top=10"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)

        def ask(path: Path, tiles: bool) -> tuple[float, float]:
            request = urllib.request.Request(f"{url}&tiles={'true' if tiles else 'false'}", data=path.read_bytes(),
                                             headers={"Content-Type": "image/jpeg"}, method="POST")
            started = time.monotonic()
            with urllib.request.urlopen(request, timeout=60) as response:
                body = json.loads(response.read())
            return (time.monotonic() - started) * 1000, body["took_ms"]

        for tiles in (False, True):
            ask(queries[0], tiles)  # loads the index
        latency: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for path in queries:
            for tiles in (False, True):
                latency[tiles].append(ask(path, tiles))
        for tiles, values in latency.items():
            wall = sorted(v[0] for v in values)
            took = sorted(v[1] for v in values)
            print(f"search {'with tiles' if tiles else 'whole only'}: {len(values)} queries, p50 {statistics.median(wall):.1f} ms "
                  f"(p95 {wall[int(0.95 * (len(wall) - 1))]:.1f}), took_ms p50 {statistics.median(took):.1f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
