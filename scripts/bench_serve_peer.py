#!/usr/bin/env python3
"""The peer of `make bench-serve`: the same search served by Python.

A threaded HTTP server from the standard library answers ``POST /search`` (the image as the
body) with the 10 nearest stored items, using the Python reference pipeline
(``tools/reference_pipeline.py``: Pillow decode and resize, ONNX Runtime) and hnswlib over the
very vectors the Lookalike store holds (``vectors.npy`` and ``ids.txt`` of the bench
embeddings). Its index is built once and cached beside the vectors.

    python scripts/bench_serve_peer.py --embeddings DIR --model M.onnx --port P [--threads 1]

Prints ``ready`` on standard output when it accepts requests.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hnswlib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import reference_pipeline as reference  # noqa: E402


def load_index(embeddings: Path) -> tuple[hnswlib.Index, list[str]]:
    vectors = np.load(embeddings / "vectors.npy", mmap_mode="r")
    ids = (embeddings / "ids.txt").read_text().split()
    cached = embeddings / "peer-hnswlib-m16-ef200.bin"
    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    if cached.exists():
        index.load_index(str(cached), max_elements=vectors.shape[0])
    else:
        index.init_index(max_elements=vectors.shape[0], M=16, ef_construction=200, random_seed=1)
        index.add_items(np.asarray(vectors, dtype=np.float32), np.arange(vectors.shape[0]))
        index.save_index(str(cached))
    index.set_ef(64)
    return index, ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embeddings", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per request")
    args = parser.parse_args()

    index, ids = load_index(args.embeddings)
    session = reference.open_session(args.model, args.threads, "embedding")
    lock = threading.Lock()  # hnswlib queries from several threads at once are not documented as safe

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            try:
                pixels, _ = reference.preprocess(io.BytesIO(body), 224, 896)
                vector = reference.embed(session, pixels, "embedding").astype(np.float32)
                with lock:
                    labels, distances = index.knn_query(vector, k=10)
                hits = [{"id": ids[int(label)], "score": float(1 - distance)} for label, distance in zip(labels[0], distances[0])]
                answer, status = json.dumps({"hits": hits}).encode(), 200
            except Exception as error:  # a bad image is the client's error
                answer, status = json.dumps({"error": str(error)}).encode(), 400
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
