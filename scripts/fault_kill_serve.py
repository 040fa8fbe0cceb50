"""`lookalike serve` SIGKILLed under load, then restarted: nothing acknowledged is lost.

Each round starts the server on the same store and loads it from all sides at once: 32 clients
upload distinct product photos (one upload in ten repeats bytes already sent), a folder job
indexes another folder, and a client deletes uploaded items. After a random moment the server is
SIGKILLed and started again. Then:

- the catalog passes SQLite's `integrity_check`, and holds one item per content hash;
- every upload the server acknowledged (201 or 200) and no client deleted is stored, and is its
  own first hit; no deleted item comes back;
- every stored item's image is served, with the bytes its content hash names;
- no upload folder is left without an item;
- the folder job, asked for by its id: reported (resumed, finished or failed) or lost.

    .venv/bin/python scripts/fault_kill_serve.py --rounds 10 --json report.json

Exit status 0 when every data check held in every round, 1 otherwise. A lost job is reported,
not failed: jobs on a SQLite store live in the server's memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "python"))

import server_process  # noqa: E402
from fault_kill_add import write_images  # noqa: E402

UPLOADERS = 32


class Ledger:
    """What the server acknowledged, as the clients saw it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[str, bytes] = {}  # id -> bytes
        self.deleted: set[str] = set()
        # Deletes cut off by a kill: the server may have committed one and died before answering,
        # so the item may or may not be there; it counts as neither lost nor back.
        self.unanswered: set[str] = set()
        self.errors = 0

    def stored(self, item_id: str, data: bytes) -> None:
        with self.lock:
            self.acknowledged[item_id] = data
            self.deleted.discard(item_id)

    # Items are either deletable or repeatable, never both, so that a repeated upload answered
    # "duplicate" cannot race a deletion of the same item and be counted wrongly.
    @staticmethod
    def deletable(item_id: str) -> bool:
        return int(item_id[-1], 16) % 2 == 0

    def pick(self, rng: random.Random) -> str | None:
        with self.lock:
            live = [key for key in self.acknowledged if key not in self.deleted and self.deletable(key)]
            return rng.choice(live) if live else None

    def repeatable(self) -> list[bytes]:
        with self.lock:
            return [data for key, data in self.acknowledged.items() if not self.deletable(key)]

    def removed(self, item_id: str) -> None:
        with self.lock:
            self.deleted.add(item_id)

    def delete_unanswered(self, item_id: str) -> None:
        with self.lock:
            self.unanswered.add(item_id)


def load(server: server_process.ServerProcess, images: list[Path], ledger: Ledger, stop: threading.Event,
         seed: int) -> list[threading.Thread]:
    cursor = {"next": 0}
    cursor_lock = threading.Lock()

    def uploader(number: int) -> None:
        rng = random.Random(seed * 100 + number)
        while not stop.is_set():
            sent = ledger.repeatable()
            if sent and rng.random() < 0.1:
                data = rng.choice(sent)
            else:
                with cursor_lock:
                    if cursor["next"] >= len(images):
                        return
                    data = images[cursor["next"]].read_bytes()
                    cursor["next"] += 1
            try:
                status, _, body = server.request("POST", "/v1/collections/default/items?name=photo.png", data,
                                                 content_type="application/octet-stream", timeout=30)
            except OSError:
                ledger.errors += 1
                continue
            if status in (200, 201):
                ledger.stored(json.loads(body)["item"]["id"], data)

    def deleter() -> None:
        rng = random.Random(seed)
        while not stop.wait(0.2):
            victim = ledger.pick(rng)
            if victim is None:
                continue
            try:
                status, _, _ = server.request("DELETE", f"/v1/collections/default/items/{victim}", timeout=30)
            except OSError:
                ledger.delete_unanswered(victim)
                continue
            if status == 204:
                ledger.removed(victim)

    threads = [threading.Thread(target=uploader, args=(n,), daemon=True) for n in range(UPLOADERS)]
    threads.append(threading.Thread(target=deleter, daemon=True))
    for thread in threads:
        thread.start()
    return threads


def check(server: server_process.ServerProcess, store: Path, ledger: Ledger, job_id: str | None) -> dict:
    problems: list[str] = []
    connection = sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = connection.execute("SELECT id, content_hash, source_path FROM item").fetchall()
    finally:
        connection.close()
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    stored = {row[0]: (row[1], row[2]) for row in rows}
    if len({row[1] for row in rows}) != len(rows):
        problems.append("a content hash is stored twice")

    live = {key: data for key, data in ledger.acknowledged.items() if key not in ledger.deleted}
    lost = [key for key in live if key not in stored and key not in ledger.unanswered]
    back = [key for key in ledger.deleted if key in stored]
    if lost:
        problems.append(f"{len(lost)} acknowledged uploads are gone: {lost[:5]}")
    if back:
        problems.append(f"{len(back)} deleted items came back: {back[:5]}")

    unserved = 0
    for item_id, (content_hash, _) in stored.items():
        status, _, body = server.request("GET", f"/v1/collections/default/items/{item_id}/image", timeout=30)
        if status != 200 or hashlib.sha256(body).hexdigest() != content_hash:
            unserved += 1
    if unserved:
        problems.append(f"{unserved} stored items' images are not served as stored")

    uploads = store / "uploads"
    folders = [p.name for p in uploads.iterdir()] if uploads.is_dir() else []
    orphans = [name for name in folders if name[:16] not in stored]
    if orphans:
        problems.append(f"{len(orphans)} upload folders without an item: {orphans[:3]}")

    not_first = 0
    for item_id, data in live.items():
        if item_id not in stored:
            continue
        status, _, body = server.request("POST", "/v1/collections/default/search?top=1", data,
                                         content_type="application/octet-stream", timeout=60)
        hits = json.loads(body)["hits"] if status == 200 else []
        if not hits or hits[0]["id"] != item_id:
            not_first += 1
    if not_first:
        problems.append(f"{not_first} acknowledged uploads are not their own first hit")

    job = "none"
    if job_id:
        status, document = server.get_json(f"/v1/jobs/{job_id}")
        job = document.get("state", "?") if status == 200 and isinstance(document, dict) else "lost"
    return {"items": len(stored), "acknowledged": len(live), "deleted": len(ledger.deleted), "lost": len(lost),
            "came_back": len(back), "unserved": unserved, "orphan_uploads": len(orphans), "not_own_first_hit": not_first,
            "job": job, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--uploads", type=int, default=200, help="distinct photos uploaded per round")
    parser.add_argument("--folder", type=int, default=300, help="photos in the folder the job indexes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args(argv)

    work = arguments.work or Path(tempfile.mkdtemp(prefix="lookalike-kill-serve-"))
    rng = random.Random(arguments.seed)
    pool = write_images(work / "pool", arguments.rounds * arguments.uploads + arguments.folder)
    folder = work / "folder"
    folder.mkdir(exist_ok=True)
    for image in pool[: arguments.folder]:
        os.link(image, folder / image.name)
    uploads = pool[arguments.folder:]
    store = work / "store"
    ledger = Ledger()
    report: dict = {"rounds": []}
    for number in range(arguments.rounds):
        server = server_process.ServerProcess(store=store, index_root=work, log_dir=work / f"logs-{number}")
        server.start()
        job_id = None
        status, job = server.post_json("/v1/collections/default/jobs", {"path": str(folder), "recursive": True})
        if status == 202:
            job_id = job["id"]
        stop = threading.Event()
        batch = uploads[number * arguments.uploads:(number + 1) * arguments.uploads]
        threads = load(server, batch, ledger, stop, arguments.seed * 1000 + number)
        time.sleep(rng.uniform(1.0, 5.0))
        server.process.kill()
        server.process.wait()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

        restarted = server_process.ServerProcess(store=store, index_root=work, log_dir=work / f"logs-{number}-after")
        restarted.start()
        try:
            outcome = check(restarted, store, ledger, job_id)
        finally:
            restarted.stop()
        report["rounds"].append(outcome)
        print(f"round {number}: items {outcome['items']}, acknowledged {outcome['acknowledged']}, lost {outcome['lost']}, "
              f"unserved {outcome['unserved']}, orphan uploads {outcome['orphan_uploads']}, "
              f"not own first hit {outcome['not_own_first_hit']}, job {outcome['job']}", flush=True)
        for problem in outcome["problems"]:
            print("PROBLEM:", problem, flush=True)

    problems = sum(len(r["problems"]) for r in report["rounds"])
    report["summary"] = {"rounds": len(report["rounds"]), "problems": problems,
                         "lost": sum(r["lost"] for r in report["rounds"]),
                         "jobs_lost": sum(r["job"] == "lost" for r in report["rounds"]),
                         "acknowledged_at_end": report["rounds"][-1]["acknowledged"] if report["rounds"] else 0}
    print(json.dumps(report["summary"]))
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")
    if not arguments.work:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
