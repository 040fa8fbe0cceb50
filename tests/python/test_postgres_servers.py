"""Several Lookalike processes on one PostgreSQL store, and the database going away under them.

Each test module gets a PostgreSQL cluster of its own (``scripts/postgres.sh``), so it can stop
and restart the database without disturbing other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402

POSTGRES = server_process.REPO / "scripts" / "postgres.sh"


class Cluster:
    """A throwaway PostgreSQL in ``folder``: started, stopped and resumed with scripts/postgres.sh."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = ""

    def _run(self, *arguments: str) -> str:
        result = subprocess.run(["bash", str(POSTGRES), *arguments], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"postgres.sh {' '.join(arguments)} failed: {result.stderr}"
        return result.stdout.strip()

    def start(self) -> None:
        self.url = self._run("start", str(self.folder)).splitlines()[-1]

    def stop(self) -> None:
        self._run("stop", str(self.folder))

    def resume(self) -> None:
        self._run("resume", str(self.folder))

    def replica(self, folder: Path) -> Cluster:
        """A streaming replica of this cluster, started."""
        replica = Cluster(folder)
        replica.url = replica._run("replica", str(self.folder), str(folder)).splitlines()[-1]
        return replica

    def promote(self) -> None:
        self._run("promote", str(self.folder))

    @property
    def port(self) -> int:
        return int((self.folder / "port").read_text())


@pytest.fixture(scope="module")
def cluster():
    # As root the server runs as a user of its own, which must reach the cluster's folder: a
    # folder of its own in the system's temporary folder, not in pytest's (private to root).
    base = Path(tempfile.mkdtemp(prefix="lookalike-postgres-test."))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        subprocess.run(["bash", str(POSTGRES), "stop", str(cluster.folder)], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def lookalike(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(server_process.lookalike_binary()), *arguments], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def stats(url: str, files: Path) -> dict:
    """What the store holds (`files`: the folder of its files, kept out of the user's own)."""
    result = lookalike("stats", "--store", url, "--json", env={"LOOKALIKE_FILES": str(files)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_two_processes_adding_one_folder_at_once_store_each_image_once(cluster, tmp_path):
    photos = server_process.photos_dir()
    expected = len(server_process.image_files(photos))
    url = cluster.url + "?schema=together"
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda files: lookalike("add", str(photos), "-r", "--json", "--store", url,
                                                     env={"LOOKALIKE_FILES": str(tmp_path / files)}),
                             ["a", "b"]))
    for run in runs:
        assert run.returncode == 0, run.stderr
        report = json.loads(run.stdout)
        assert not report["failed"], report["failed"]
        assert len(report["added"]) + len(report["duplicates"]) == expected
    counts = stats(url, tmp_path / "stats")
    assert counts["items"] == expected, counts
    assert list(counts["vectors"].values()) == [expected], counts


def test_servers_share_one_database_and_ride_out_a_restart(cluster, tmp_path):
    photos = server_process.photos_dir()
    url = cluster.url + "?schema=shared"
    key = server_process.new_key()
    first = server_process.ServerProcess(store=tmp_path / "files-a", index_root=photos, admin_key=key,
                                         log_dir=tmp_path / "a", database=url)
    second = server_process.ServerProcess(store=tmp_path / "files-b", index_root=photos, admin_key=key,
                                          log_dir=tmp_path / "b", database=url)
    with first, second:
        # Indexed through one server, searched through the other.
        job = first.index_folder(photos)
        assert job["state"] == "finished", job
        photo = server_process.image_files(photos)[3]
        status, headers, body = second.request("POST", "/v1/collections/default/search?top=3", photo.read_bytes(),
                                               content_type="application/octet-stream")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["hits"][0]["id"] == server_process.item_id(photo), answer
        assert answer["searched"] == len(server_process.image_files(photos))

        # An upload with metadata through the second is found, filtered, through the first.
        extra = tmp_path / "extra.png"
        extra.write_bytes(photo.read_bytes() + b"\0")  # other bytes, the same picture
        status, _, body = second.request("POST", "/v1/collections/default/items?metadata=%7B%22shelf%22%3A%22b%22%7D",
                                         extra.read_bytes(), content_type="application/octet-stream")
        assert status == 201, body
        status, found = first.post_json("/v1/collections/default/search",
                                        {"id": server_process.item_id(photo), "filter": {"shelf": "b"}})
        assert status == 200, found
        assert [hit["id"] for hit in found["hits"]] == [server_process.item_id(extra)]

        # The database goes away: a clear 503 with Retry-After, not a hang or a 500.
        cluster.stop()
        status, headers, body = second.request("POST", "/v1/collections/default/search?top=3", photo.read_bytes(),
                                               content_type="application/octet-stream", timeout=60)
        assert status == 503, body
        assert json.loads(body)["error"]["code"] == "store_unavailable"
        assert "retry-after" in headers
        # Back again: both servers answer without a restart of their own.
        cluster.resume()
        for server in (first, second):
            deadline = time.monotonic() + 30
            while True:
                status, _, body = server.request("POST", "/v1/collections/default/search?top=3", photo.read_bytes(),
                                                 content_type="application/octet-stream")
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == 200, body
            # The photo and its copy with one byte more are the same picture: either may come first.
            top = {hit["id"] for hit in json.loads(body)["hits"][:2]}
            assert top == {server_process.item_id(photo), server_process.item_id(extra)}, body


def test_a_job_outlives_the_server_running_it(cluster, tmp_path):
    """A server killed while it indexes a folder: another server of the store takes the job over
    once its lease runs out, and finishes it, with every image stored once."""
    edits = server_process.data_dir() / "edits"
    images = server_process.image_files(edits)
    assert len(images) >= 100, f"{edits} holds {len(images)} images: run `make test-data`"
    url = cluster.url + "?schema=jobs"
    key = server_process.new_key()
    lease = {"LOOKALIKE_JOB_LEASE": "3"}
    first = server_process.ServerProcess(store=tmp_path / "files-a", index_root=edits, admin_key=key,
                                         log_dir=tmp_path / "a", database=url, environment=lease)
    second = server_process.ServerProcess(store=tmp_path / "files-b", index_root=edits, admin_key=key,
                                          log_dir=tmp_path / "b", database=url, environment=lease)
    with first:
        status, job = first.post_json("/v1/collections/default/jobs", {"path": str(edits)})
        assert status == 202, job
        deadline = time.monotonic() + 120
        while True:
            status, job = first.get_json(f"/v1/jobs/{job['id']}")
            assert status == 200, job
            if job["state"] == "running" and job["done"] >= 10:
                break
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.2)
        first.process.kill()
        first.process.wait(timeout=10)
    stored_before = stats(url, tmp_path / "stats")["items"]
    assert stored_before < len(images), "the job finished before the server was killed: nothing to take over"
    with second:
        deadline = time.monotonic() + 300
        while True:
            status, job = second.get_json(f"/v1/jobs/{job['id']}")
            assert status == 200, job
            if job["state"] in ("finished", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert job["state"] == "finished", job
        assert job["attempts"] == 2, job
    counts = stats(url, tmp_path / "stats")
    unique = len({server_process.item_id(path) for path in images})
    assert counts["items"] == unique, counts
    assert list(counts["vectors"].values()) == [unique], counts


def test_searches_go_to_a_replica_and_writes_follow_a_promotion(cluster, tmp_path):
    """With the primary gone, searches still answer from the replica while writes wait (503);
    once the replica is promoted, writes reach it through the same address."""
    photos = server_process.photos_dir()
    replica = cluster.replica(cluster.folder.parent / "replica")
    try:
        # Every host in one address; libpq connects to whichever accepts writes.
        primary = (f"postgres://lookalike@127.0.0.1:{cluster.port},127.0.0.1:{replica.port}/lookalike"
                   "?target_session_attrs=read-write&schema=replicated")
        key = server_process.new_key()
        with server_process.ServerProcess(store=tmp_path / "files", index_root=photos, admin_key=key, log_dir=tmp_path,
                                          database=primary, arguments=["--read-replica", replica.url]) as server:
            job = server.index_folder(photos)
            assert job["state"] == "finished", job
            photo = server_process.image_files(photos)[5]

            def search() -> tuple[int, bytes]:
                status, _, body = server.request("POST", "/v1/collections/default/search?top=3", photo.read_bytes(),
                                                 content_type="application/octet-stream")
                return status, body

            def upload(extra: bytes) -> tuple[int, bytes]:
                status, _, body = server.request("POST", "/v1/collections/default/items", photo.read_bytes() + extra,
                                                 content_type="application/octet-stream")
                return status, body

            # The replica has caught up when a search finds everything.
            deadline = time.monotonic() + 30
            while True:
                status, body = search()
                if status == 200 and json.loads(body)["searched"] == len(server_process.image_files(photos)):
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.5)

            # A replica that goes away is skipped: the primary answers.
            replica.stop()
            status, body = search()
            assert status == 200, body
            assert json.loads(body)["hits"][0]["id"] == server_process.item_id(photo)
            replica.resume()
            time.sleep(6)  # a replica found down is looked at again after 5 s

            cluster.stop()
            status, body = search()
            assert status == 200, body
            assert json.loads(body)["hits"][0]["id"] == server_process.item_id(photo)
            status, body = upload(b"\0")
            assert status == 503, body

            replica.promote()
            deadline = time.monotonic() + 30
            while True:
                status, body = upload(b"\0\0")
                if status == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == 201, body
            status, body = search()
            assert status == 200, body
            assert json.loads(body)["searched"] == len(server_process.image_files(photos)) + 1
    finally:
        subprocess.run(["bash", str(POSTGRES), "stop", str(replica.folder)], capture_output=True, timeout=120)
        cluster.resume()
