"""Slow and many clients against ``lookalike serve`` over real sockets.

A client that trickles its request (head or body) is closed once it is too slow, and while
dozens of them trickle, a normal search still answers at once: nothing a slow client holds is
needed by anyone else. Many idle sockets cost the server nothing it cannot spare: ``/healthz``
answers, and when the connection cap is reached the connection idle longest makes room.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402

SLOW_CLIENTS = 2 * ((os.cpu_count() or 2) + 64)
HEAD_TIMEOUT = 10  # the server's default
BODY_GRACE = 10  # a body may take 10 s plus 1 s per 16 KiB received


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("connections")
    photos = server_process.photos_dir()
    process = server_process.ServerProcess(store=tmp / "store", index_root=photos, log_dir=tmp,
                                           arguments=["--max-connections", "1200"])
    process.start()
    process.index_folder(photos)
    yield process
    process.stop()


def enough_files(count: int) -> None:
    """Raises this process's open-file limit for ``count`` sockets, or skips when it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"the open-file limit ({hard}) is below the {wanted} sockets this test needs", pytrace=False)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.settimeout(5)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (end of stream or reset), without waiting."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
        # A 408 or any answer followed by the close counts as closed once the stream ends.
        return data == b"" or closed_by_server_after(sock)
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


def closed_by_server_after(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def timed_search(server, photo: Path) -> tuple[float, int, dict]:
    started = time.monotonic()
    status, _, body = server.request("POST", "/v1/collections/default/search?top=3", photo.read_bytes(),
                                     content_type="application/octet-stream", timeout=30)
    return time.monotonic() - started, status, json.loads(body)


def test_slow_clients_are_closed_and_lock_nobody_out(server):
    enough_files(SLOW_CLIENTS)
    photo = server_process.image_files(server_process.photos_dir())[4]
    # Half trickle a search body (a long one declared), half trickle the request head itself.
    head = (f"POST /v1/collections/default/search HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n").encode()
    bodies = [connect(server) for _ in range(SLOW_CLIENTS // 2)]
    heads = [connect(server) for _ in range(SLOW_CLIENTS - len(bodies))]
    for sock in bodies:
        sock.sendall(head)
    partial_head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
    stop = threading.Event()

    def trickle() -> None:
        sent = 0
        while not stop.is_set():
            for sock in bodies:
                try:
                    sock.send(b"\xff")
                except OSError:
                    pass
            for sock in heads:
                try:
                    sock.send(partial_head[sent % len(partial_head):][:1] if sent < len(partial_head) else b"X")
                except OSError:
                    pass
            sent += 1
            stop.wait(1.0)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        # While all of them trickle, searches answer as fast as ever.
        for _ in range(3):
            took, status, answer = timed_search(server, photo)
            assert status == 200, answer
            assert answer["hits"][0]["id"] == server_process.item_id(photo)
            assert took < 2.0, f"a search took {took:.2f} s while {SLOW_CLIENTS} clients trickled"
            time.sleep(1.0)
        # Past the deadlines, every slow client has been closed.
        time.sleep(max(HEAD_TIMEOUT, BODY_GRACE))
        deadline = time.monotonic() + 10
        open_ones = bodies + heads
        while open_ones and time.monotonic() < deadline:
            open_ones = [sock for sock in open_ones if not closed_by_server(sock)]
            time.sleep(0.5)
        assert not open_ones, f"{len(open_ones)} of {SLOW_CLIENTS} slow clients are still connected"
        took, status, _ = timed_search(server, photo)
        assert status == 200 and took < 2.0
    finally:
        stop.set()
        trickler.join()
        for sock in bodies + heads:
            sock.close()
    assert server.running, server.describe_logs()


def test_a_thousand_idle_sockets_leave_the_server_answering(server):
    enough_files(1000)
    idle = [connect(server) for _ in range(1000)]
    try:
        status, _, body = server.request("GET", "/healthz", timeout=10)
        assert status == 200, body
        photo = server_process.image_files(server_process.photos_dir())[7]
        took, status, answer = timed_search(server, photo)
        assert status == 200 and took < 2.0, answer
    finally:
        for sock in idle:
            sock.close()
    assert "too many open files" not in server.stderr().lower(), server.describe_logs()
    assert server.running


def test_at_the_connection_cap_the_idlest_connection_makes_room(tmp_path):
    enough_files(200)
    with server_process.ServerProcess(store=tmp_path / "store", index_root=tmp_path, log_dir=tmp_path,
                                      arguments=["--max-connections", "50"]) as capped:
        idle = [connect(capped) for _ in range(80)]
        try:
            time.sleep(1.0)
            # 30 made room for the last 30: the oldest were closed by the server (the two event loops
            # take connections in about the order they came), the newest stay.
            closed = [closed_by_server(sock) for sock in idle]
            assert sum(closed) == 30, closed
            assert sum(closed[:40]) >= 25 and not any(closed[-20:]), closed
            status, _, body = capped.request("GET", "/healthz", timeout=10)
            assert status == 200, body
        finally:
            for sock in idle:
                sock.close()
        assert capped.running
