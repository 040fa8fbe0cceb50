"""HTTP behaviour of ``lookalike serve`` on a real socket, the way curl talks to it.

HummingbirdTesting's router mode skips the connection layer, so what happens between the
request head and its body (``Expect: 100-continue``) is tested here against the real binary.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-server")
    process = server_process.ServerProcess(store=tmp / "store", index_root=server_process.photos_dir(), log_dir=tmp)
    process.start()
    yield process
    process.stop()


def read_until(sock: socket.socket, marker: bytes, timeout: float) -> bytes:
    """What the server sent until ``marker`` appeared, or until ``timeout`` seconds passed."""
    sock.settimeout(0.05)
    received = b""
    deadline = time.monotonic() + timeout
    while marker not in received and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        received += chunk
    return received


def test_expect_100_continue_is_answered_before_the_body(server):
    """curl sends ``Expect: 100-continue`` with bodies over 1 MB and waits up to a second for the
    interim answer before it sends the body: the server gives it at once."""
    photo = sorted(server_process.image_files(server_process.photos_dir()))[0].read_bytes()
    head = (f"POST /v1/collections/default/search HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {len(photo)}\r\nExpect: 100-continue\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head)
        interim = read_until(sock, b"\r\n\r\n", timeout=0.5)
        waited = time.monotonic() - started
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        assert waited < 0.5, f"the interim answer came after {waited:.2f} s"
        sock.sendall(photo)
        answer = read_until(sock, b"\r\n\r\n", timeout=30)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_without_expect_there_is_no_interim_answer(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        answer = read_until(sock, b"\r\n\r\n", timeout=5)
        assert answer.startswith(b"HTTP/1.1 200 "), answer


def raw_request(server, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """The status of one request whose Host and Origin headers are exactly `headers` say."""
    lines = [f"{method} {path} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        answer = read_until(sock, b"\r\n\r\n", timeout=10)
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-keyed-server")
    process = server_process.ServerProcess(store=tmp / "store", index_root=server_process.photos_dir(), log_dir=tmp,
                                           admin_key=server_process.new_key())
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize("which", ["keyless", "keyed"])
def test_browser_guards_hold_on_a_real_socket_with_and_without_keys(server, keyed_server, which):
    """DNS rebinding (a foreign Host) and pages that are not the server's own (Origin null or
    elsewhere) get nothing from a server on a loopback address, keys or no keys."""
    target = server if which == "keyless" else keyed_server
    host = f"127.0.0.1:{target.port}"
    key = {"Authorization": f"Bearer {target.admin_key}"} if target.admin_key else {}
    body = b'{"name": "guarded"}'
    assert raw_request(target, "GET", "/v1/collections", {"Host": host}) == 200
    assert raw_request(target, "GET", "/v1/collections", {"Host": f"evil.example:{target.port}"}) == 403
    for origin in ["null", "https://evil.example"]:
        status = raw_request(target, "POST", "/v1/collections",
                             {"Host": host, "Origin": origin, "Content-Type": "application/json", **key}, body)
        assert status == 403, f"Origin {origin}: {status}"
    status, collections = target.get_json("/v1/collections")
    assert status == 200 and "guarded" not in [c["name"] for c in collections["collections"]], "the store changed"
    # The server's own page may write (with the key when one is set).
    own = raw_request(target, "POST", "/v1/collections",
                      {"Host": host, "Origin": f"http://{host}", "Content-Type": "application/json", **key}, body)
    assert own == 201
    assert raw_request(target, "DELETE", "/v1/collections/guarded", {"Host": host, **key}) in (200, 204)
