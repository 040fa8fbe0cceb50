"""Kill loop on `lookalike add`: nothing stored is lost, duplicated or left half-written.

N distinct product photos (Fashion-MNIST's training split, from Debian's dataset-fashion-mnist)
are added to one store over and over, with the approximate-search threshold lowered so the HNSW
graph and its snapshot are in play. Before each run the folder gains its share of new photos (so
every run has work, whatever became of the one before), and each run is SIGKILLed at a random
moment: some while files are embedded and stored, some the instant a snapshot's temporary file
appears (inside the save). After every run:

- SQLite's `integrity_check` is ok, and every item has its vector (items = vectors);
- at most the killed run's own temporary snapshot file is left, and none after the next save.

Then a run that is not killed adds the rest, and every photo, searched through `lookalike
serve`, is its own first hit; the top 10 match a twin store searched exactly (no graph).

    .venv/bin/python scripts/fault_kill_add.py --images 3000 --runs 20 --json report.json

Exit status 0 when everything held, 1 otherwise (the report says what).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "python"))

from eval_sets import FASHION_PACKAGE, Packages, idx_images  # noqa: E402

DATA = Path(os.environ.get("LOOKALIKE_DATA", ROOT / ".data"))
MODEL = "efficientnet-lite0-gem"


def binary() -> Path:
    named = os.environ.get("LOOKALIKE_BIN")
    for path in ([Path(named)] if named else []) + [ROOT / ".build-test/release/lookalike", ROOT / ".build/release/lookalike"]:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    sys.exit("fault_kill_add: no lookalike binary (build one with `make build`, or set LOOKALIKE_BIN)")


def write_images(folder: Path, count: int) -> list[Path]:
    """`count` distinct photos (byte-distinct and pixel-distinct) from the training split."""
    packages = Packages(DATA / "packages")
    images = idx_images(packages.root(FASHION_PACKAGE) / "usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()
    paths = []
    for row in range(len(images)):
        if len(paths) == count:
            break
        pixels = images[row].tobytes()
        if pixels in seen:
            continue
        seen.add(pixels)
        path = folder / f"item-{row:05d}.png"
        Image.fromarray(images[row]).save(path)
        paths.append(path)
    return paths


def temporary_snapshots(store: Path) -> list[str]:
    index = store / "index"
    return sorted(p.name for p in index.glob(".*.tmp")) if index.is_dir() else []


def check_store(store: Path) -> dict:
    """Integrity of the catalog and items = vectors, read with SQLite itself."""
    database = store / "catalog.sqlite"
    if not database.exists():
        return {"integrity": "ok", "items": 0, "without_vector": 0}
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        items = connection.execute("SELECT count(*) FROM item").fetchone()[0]
        without = connection.execute("SELECT count(*) FROM item WHERE id NOT IN "
                                     "(SELECT item_id FROM vector WHERE model = ?)", (MODEL,)).fetchone()[0]
        hashes = connection.execute("SELECT count(*) - count(DISTINCT content_hash) FROM item").fetchone()[0]
    finally:
        connection.close()
    return {"integrity": integrity, "items": items, "without_vector": without, "duplicated": hashes}


def killed_run(command: list[str], environment: dict, store: Path, mode: str, delay: float) -> dict:
    """Starts an add and SIGKILLs it: after `delay` seconds, or the moment a temporary snapshot
    file appears (`mode` "in-save"; after `delay` if none does). Returns what happened."""
    # Progress goes to stderr, a line per file: into a file, not a pipe nobody reads while it runs.
    log = store.parent / "add.stderr"
    with open(log, "wb") as stderr_file:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr_file, env=environment)
    started = time.monotonic()
    before = set(temporary_snapshots(store))
    killed_in_save = False
    while process.poll() is None:
        elapsed = time.monotonic() - started
        if mode == "in-save" and set(temporary_snapshots(store)) - before:
            killed_in_save = True
            break
        if elapsed >= delay:
            break
        time.sleep(0.0005 if mode == "in-save" else 0.01)
    finished = process.poll() is not None
    if not finished:
        process.send_signal(signal.SIGKILL)
    process.wait()
    stderr = log.read_text(errors="replace")
    return {"mode": mode, "after_s": round(time.monotonic() - started, 3), "killed": not finished,
            "killed_in_save": killed_in_save, "exit": process.returncode,
            "crash": any(marker in stderr for marker in ("Fatal error", "*** Signal", "*** Program crashed"))}


def search_all(store: Path, images: list[Path], environment: dict, top: int) -> list[list[tuple[str, float]]]:
    """Every image searched through a real server on `store`: its top hits (id, score)."""
    import server_process

    answers = []
    with server_process.ServerProcess(store=store, index_root=store.parent, log_dir=store.parent / f"{store.name}-logs",
                                      environment=environment) as server:
        for image in images:
            status, _, body = server.request("POST", f"/v1/collections/default/search?top={top}", image.read_bytes(),
                                             content_type="application/octet-stream", timeout=60)
            if status != 200:
                raise RuntimeError(f"search with {image.name} answered {status}: {body[:300]!r}")
            answers.append([(hit["id"], hit["score"]) for hit in json.loads(body)["hits"]])
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threshold", type=int, default=500, help="approximate search from this many vectors on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a fresh one under /tmp)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    arguments = parser.parse_args(argv)

    import tempfile
    work = arguments.work or Path(tempfile.mkdtemp(prefix="lookalike-kill-"))
    rng = random.Random(arguments.seed)
    images = write_images(work / "pool", arguments.images)
    folder = work / "images"
    folder.mkdir(exist_ok=True)
    store, twin = work / "store", work / "exact"
    lookalike = binary()
    environment = {**os.environ, "LOOKALIKE_APPROXIMATE_FROM": str(arguments.threshold)}
    add = [str(lookalike), "add", str(work / "images"), "--recursive", "--store", str(store)]

    # How long one whole add takes, to spread the kills over it.
    probe_store = work / "probe"
    started = time.monotonic()
    subprocess.run([str(lookalike), "add", *map(str, images[: max(1, len(images) // 10)]), "--store", str(probe_store)],
                   check=True, capture_output=True, env=environment)
    share = -(-len(images) // (arguments.runs + 1))
    # One run's new photos take this long (the folder walk and the duplicates cost little).
    whole = max(0.5, (time.monotonic() - started) * 10 * share / len(images))

    report: dict = {"images": len(images), "runs": [], "problems": []}
    leftover: list[str] = []
    for number in range(arguments.runs):
        for image in images[number * share:(number + 1) * share]:
            os.link(image, folder / image.name)
        mode = "in-save" if number % 3 == 2 else "anywhere"
        delay = rng.uniform(0.2, whole * 1.2) if mode == "anywhere" else whole * 8
        run = killed_run(add, environment, store, mode, delay)
        state = check_store(store)
        temporaries = temporary_snapshots(store)
        run.update(state, temporaries=len(temporaries))
        report["runs"].append(run)
        if state["integrity"] != "ok":
            report["problems"].append(f"run {number}: integrity_check says {state['integrity']}")
        if state["without_vector"]:
            report["problems"].append(f"run {number}: {state['without_vector']} items without a vector")
        if state.get("duplicated"):
            report["problems"].append(f"run {number}: {state['duplicated']} content hashes stored twice")
        if run["crash"]:
            report["problems"].append(f"run {number}: the add crashed before it was killed")
        if len(temporaries) > 1 or (leftover and run["exit"] == 0 and set(leftover) & set(temporaries)):
            report["problems"].append(f"run {number}: stale temporary snapshots {temporaries}")
        leftover = temporaries
        print(f"run {number:2d} {mode:8s} killed={run['killed']!s:5s} in_save={run['killed_in_save']!s:5s} "
              f"after {run['after_s']:6.2f} s: items {state['items']}, without vector {state['without_vector']}, "
              f"temporaries {len(temporaries)}", flush=True)

    for image in images[arguments.runs * share:]:
        os.link(image, folder / image.name)
    final = subprocess.run(add, capture_output=True, text=True, env=environment)
    state = check_store(store)
    report["final"] = {"exit": final.returncode, **state, "temporaries": temporary_snapshots(store)}
    if final.returncode != 0 or state["items"] != len(images) or state["without_vector"] or state["integrity"] != "ok":
        report["problems"].append(f"the clean run left {state} (exit {final.returncode}): {final.stderr[-500:]}")
    if report["final"]["temporaries"]:
        report["problems"].append(f"stale temporary snapshots after a clean run: {report['final']['temporaries']}")

    twin_environment = {**os.environ, "LOOKALIKE_APPROXIMATE_FROM": "100000000"}
    subprocess.run([str(lookalike), "add", str(folder), "--recursive", "--store", str(twin)],
                   check=True, capture_output=True, env=twin_environment)
    approximate = search_all(store, images, {"LOOKALIKE_APPROXIMATE_FROM": str(arguments.threshold)}, 10)
    exact = search_all(twin, images, {"LOOKALIKE_APPROXIMATE_FROM": "100000000"}, 10)
    import server_process

    not_first = [image.name for image, hits in zip(images, approximate)
                 if not hits or hits[0][0] != server_process.item_id(image)]
    overlap = sum(len({h for h, _ in a} & {h for h, _ in e}) / max(1, len(e)) for a, e in zip(approximate, exact)) / len(images)
    top1_equal = sum(a[0][0] == e[0][0] for a, e in zip(approximate, exact) if a and e) / len(images)
    report["search"] = {"own_first_hit_missed": len(not_first), "top10_overlap_with_exact": round(overlap, 4),
                        "top1_equal_to_exact": round(top1_equal, 4)}
    if not_first:
        report["problems"].append(f"{len(not_first)} images are not their own first hit: {not_first[:5]}")
    if overlap < 0.99:
        report["problems"].append(f"top-10 overlap with the exact twin is {overlap:.4f}, under 0.99")
    kills = [run for run in report["runs"] if run["killed"]]
    report["summary"] = {"runs": len(report["runs"]), "killed": len(kills),
                         "killed_in_save": sum(run["killed_in_save"] for run in kills),
                         "items_lost": len(images) - state["items"], "problems": len(report["problems"])}
    print(json.dumps(report["summary"] | report["search"]))
    for problem in report["problems"]:
        print("PROBLEM:", problem)
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")
    if not arguments.work:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
