"""Body ceilings over real sockets: 70 clients at once each sending a 30 MiB JSON filter.

JSON bodies carry options, never images, and are refused past 1 MiB: a body that declares its
length is refused from its head, one sent in chunks once its first MiB has come. Every client
gets 413, the server holds at most a MiB of each at a time (its peak memory grows by far less
than the 2.1 GiB sent), and a search right after answers as usual.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402

CLIENTS = 70
BODY_BYTES = 30 << 20
CHUNK = 256 << 10


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from server_process.keyless_indexed_server(tmp_path_factory.mktemp("ceilings"))


def huge_filter_chunks():
    """A 30 MiB filter, `{"filter": {"tag": {"$in": ["v0000000", ...]}}}`, in 256 KiB pieces."""
    head = b'{"id": "x", "filter": {"tag": {"$in": ['
    values = b",".join(b'"v%07d"' % number for number in range(CHUNK // 11))
    sent = 0
    yield head
    sent += len(head)
    while sent + len(values) + 1 < BODY_BYTES - 8:
        piece = values + b","
        yield piece
        sent += len(piece)
    yield b'"end"]}}}'


def peak_memory_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def send_huge_filter(port: int, chunked: bool, outcome: dict, index: int) -> None:
    """Sends the filter as fast as the server takes it; records the status the server answered."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.settimeout(30)
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % BODY_BYTES
    try:
        sock.sendall(b"POST /v1/collections/default/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\n" + framing + b"\r\n")
        for piece in huge_filter_chunks():
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the whole body was sent, as it should
    answer = b""
    try:
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError, socket.timeout) as error:
        answer = answer or f"no answer: {error!r}".encode()
    finally:
        sock.close()
    outcome[index] = answer.split(b"\r\n", 1)[0].decode(errors="replace")


def test_seventy_thirty_mib_filters_at_once_are_refused_and_memory_stays_bounded(server):
    before = peak_memory_kb(server.process.pid)
    outcome: dict[int, str] = {}
    threads = [threading.Thread(target=send_huge_filter, args=(server.port, index % 2 == 1, outcome, index))
               for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    statuses = sorted(set(outcome.values()))
    assert len(outcome) == CLIENTS, f"{CLIENTS - len(outcome)} clients did not finish"
    assert [status.split(" ")[1] for status in statuses] == ["413"], statuses
    grown_mb = (peak_memory_kb(server.process.pid) - before) / 1024
    assert grown_mb < 256, f"the server's peak memory grew by {grown_mb:.0f} MB for {CLIENTS} refused bodies"
    photo = server_process.image_files(server_process.photos_dir())[0]
    status, _, body = server.request("POST", "/v1/collections/default/search?top=1", photo.read_bytes(),
                                     content_type="image/jpeg")
    assert status == 200 and json.loads(body)["hits"][0]["id"] == server_process.item_id(photo)
    print(f"{CLIENTS} x {BODY_BYTES >> 20} MiB filters: all 413; server peak memory grew by {grown_mb:.0f} MB")
