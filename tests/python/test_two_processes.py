"""``lookalike serve`` and the ``lookalike`` CLI on one store, as two processes.

A server that is already warm (its index loaded) must see what the CLI adds and removes at its
next search, below the approximate-search threshold (exact index) and above it (HNSW graph),
without a restart: an added photo is its own first hit within 2 s, and a search after a removal
still gives as many hits as asked, none of them removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402

FIND_WITHIN = 2.0


def cli(*arguments: str, store: Path, environment: dict[str, str]) -> str:
    """Runs ``lookalike ARGUMENTS --store STORE`` and returns what it printed."""
    command = [str(server_process.lookalike_binary()), *arguments, "--store", str(store)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **environment})
    assert run.returncode == 0, f"{' '.join(command)} exited {run.returncode}: {run.stderr[-2000:]}"
    return run.stdout


def search(server: server_process.ServerProcess, photo: Path, top: int) -> list[dict]:
    status, _, body = server.request("POST", f"/v1/collections/default/search?top={top}", photo.read_bytes(),
                                     content_type="application/octet-stream")
    assert status == 200, body
    return json.loads(body)["hits"]


@pytest.mark.parametrize("index", ["exact", "hnsw"])
def test_a_warm_server_sees_what_the_cli_adds_and_removes(tmp_path, index):
    photos = server_process.image_files(server_process.photos_dir())
    store = tmp_path / "store"
    # Above the threshold from the tenth vector on: the server searches an HNSW graph.
    environment = {"LOOKALIKE_APPROXIMATE_FROM": "10"} if index == "hnsw" else {}
    first, later = photos[:-3], photos[-3:]
    cli("add", *map(str, first), store=store, environment=environment)

    with server_process.ServerProcess(store=store, index_root=tmp_path, log_dir=tmp_path / "logs",
                                      environment=environment) as server:
        assert search(server, first[0], 1)[0]["id"] == server_process.item_id(first[0])  # warm
        status, collection = server.get_json("/v1/collections/default")
        assert status == 200 and collection["items"] == len(first), collection

        cli("add", *map(str, later), store=store, environment=environment)
        for photo in later:
            started = time.monotonic()
            while True:
                top = search(server, photo, 1)[0]
                if top["id"] == server_process.item_id(photo) or time.monotonic() - started > FIND_WITHIN:
                    break
                time.sleep(0.1)
            assert top["id"] == server_process.item_id(photo), f"{photo.name} not found within {FIND_WITHIN} s: {top}"

        victims = [hit["id"] for hit in search(server, photos[5], 5)]
        assert cli("remove", *victims, store=store, environment=environment).strip() == "removed 5"
        hits = search(server, photos[5], 10)
        assert len(hits) == 10, hits
        assert not {hit["id"] for hit in hits} & set(victims), hits
        assert server.running, server.describe_logs()
