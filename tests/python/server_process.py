"""Runs ``lookalike serve`` for the server tests and talks to it over HTTP (stdlib only).

The binary is ``$LOOKALIKE_BIN`` (the Makefile sets it), else ``.build-test/release/lookalike``,
else ``.build/release/lookalike`` under the repository; when none exists the test fails with
instructions. The models are found by the binary through ``LOOKALIKE_MODELS``, which is passed
through with the rest of the environment. The photos are ``$LOOKALIKE_DATA/photos`` (default
``<repo>/.data/photos``).

A test module typically starts one server on an empty store and indexes the photos::

    with ServerProcess(store=tmp / "store", index_root=photos, admin_key=key) as server:
        server.index_folder(photos)
        status, body = server.get_json("/v1/collections/default")
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
INDEX_TIMEOUT = 300.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MIN_PHOTOS = 30
LOG_TAIL_CHARS = 8000
# How a Swift program's crash report starts (a trap, or a fatalError/precondition message).
CRASH_MARKERS = ("Fatal error:", "*** Signal ", "*** Program crashed")

# Loopback only, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def lookalike_binary() -> Path:
    """The ``lookalike`` executable to test; fails the test when there is none."""
    named = os.environ.get("LOOKALIKE_BIN")
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"LOOKALIKE_BIN={named} is not an executable file: run `make build` "
                        "or point LOOKALIKE_BIN at the lookalike binary", pytrace=False)
        return path
    candidates = [REPO / ".build-test" / "release" / "lookalike", REPO / ".build" / "release" / "lookalike"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    pytest.fail("no lookalike binary: set LOOKALIKE_BIN, or build one with `make build` (looked for "
                + ", ".join(str(p.relative_to(REPO)) for p in candidates) + ")", pytrace=False)


def data_dir() -> Path:
    """``$LOOKALIKE_DATA``, by default ``<repo>/.data``."""
    return Path(os.environ.get("LOOKALIKE_DATA") or REPO / ".data").resolve()


def image_files(folder: Path) -> list[Path]:
    """The image files directly in a folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def photos_dir() -> Path:
    """The fetched photo set; fails the test with instructions when it is missing."""
    photos = data_dir() / "photos"
    count = len(image_files(photos)) if photos.is_dir() else 0
    if count < MIN_PHOTOS:
        pytest.fail(f"{photos} holds {count} photos and needs at least {MIN_PHOTOS}: run `make setup`",
                    pytrace=False)
    return photos


def item_id(path: Path) -> str:
    """The id the server gives an image file: the first 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def new_key() -> str:
    """A random API key."""
    return secrets.token_hex(16)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """One ``lookalike serve`` process on 127.0.0.1 and a free port, with its output kept in files.

    ``start()`` returns once ``GET /healthz`` answers ``{"status": "ok"}`` and fails the
    test, with the server's stderr, when that takes over a minute or the process exits.
    ``stop()`` sends SIGTERM, then SIGKILL after ten seconds.
    """

    def __init__(self, *, store: Path, index_root: Path, admin_key: str | None = None,
                 read_key: str | None = None, log_dir: Path | None = None, database: str | None = None,
                 environment: dict[str, str] | None = None, arguments: list[str] | None = None) -> None:
        self.store = Path(store)
        # With a PostgreSQL address, the store is that database and ``store`` the folder of its files.
        self.database = database
        self.environment = dict(environment or {})
        self.arguments = list(arguments or [])
        self.index_root = Path(index_root)
        self.admin_key = admin_key
        self.read_key = read_key
        self.log_dir = Path(log_dir) if log_dir is not None else self.store.parent
        self.stdout_path = self.log_dir / "server.stdout"
        self.stderr_path = self.log_dir / "server.stderr"
        self.process: subprocess.Popen | None = None
        self.port = 0

    # -- lifetime ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start the server and wait until it answers."""
        binary = lookalike_binary()
        self.store.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for name, value in (("LOOKALIKE_ADMIN_KEY", self.admin_key), ("LOOKALIKE_READ_KEY", self.read_key)):
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        # The free port could be taken between the probe and the server's bind: then try another.
        for _ in range(3):
            self.port = free_port()
            env.update(self.environment)
            if self.database:
                env["LOOKALIKE_FILES"] = str(self.store)
            command = [str(binary), "serve", "--store", self.database or str(self.store), "--host", "127.0.0.1",
                       "--port", str(self.port), "--index-root", str(self.index_root), *self.arguments]
            with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                                env=env, cwd=self.log_dir)
            if self._wait_until_ready(command):
                return self
            if "in use" not in self.stderr().lower():
                break
        pytest.fail(f"`{' '.join(command)}` exited with status {self.process.returncode} before it "
                    f"answered on {self.base_url}\n{self.describe_logs()}", pytrace=False)

    def _wait_until_ready(self, command: list[str]) -> bool:
        """True once GET /healthz answers; False when the process exits first; fails the test on a timeout.

        The server also prints its address when it listens, but stdout into a file may be
        block-buffered, so /healthz is what counts.
        """
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self._healthy():
                return True
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"`{' '.join(command)}` did not answer GET /healthz on {self.base_url} within "
                    f"{STARTUP_TIMEOUT:.0f} s\n{self.describe_logs()}", pytrace=False)

    def _healthy(self, timeout: float = 2.0) -> bool:
        """GET /healthz answers 200 {"status": "ok"}."""
        try:
            status, _, body = self.request("GET", "/healthz", key=None, timeout=timeout)
            return status == 200 and json.loads(body) == {"status": "ok"}
        except (OSError, ValueError):
            return False

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ten seconds; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- output -----------------------------------------------------------------------------------

    def stdout(self) -> str:
        """Everything the server printed to stdout so far."""
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        """Everything the server printed to stderr so far."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    @property
    def running(self) -> bool:
        """The process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def describe_logs(self) -> str:
        """The server's stderr, from a crash report if there is one, else its end; and stdout's end."""
        err, out = self.stderr(), self.stdout()
        crash = min((at for at in (err.find(marker) for marker in CRASH_MARKERS) if at >= 0), default=-1)
        if crash >= 0:
            what, err = "from the crash report", err[crash:crash + LOG_TAIL_CHARS]
        else:
            what, err = f"last {LOG_TAIL_CHARS} characters", err[-LOG_TAIL_CHARS:]
        status = "running" if self.running else f"exited with status {self.process.returncode}" \
            if self.process is not None else "not started"
        return (f"--- server ({status}) stderr, {what} (all of it: {self.stderr_path}) ---\n{err}\n"
                f"--- server stdout ---\n{out[-2000:]}")

    # -- HTTP -------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, *, content_type: str | None = None,
                key: str | None = "admin", headers: dict[str, str] | None = None,
                timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
        """One request; returns (status, headers with lower-case names, body) for any status.

        ``key`` is "admin" (the default), "read", None (no key) or a literal key.
        """
        all_headers = dict(headers or {})
        bearer = {"admin": self.admin_key, "read": self.read_key}.get(key, key) if key else None
        if bearer:
            all_headers["Authorization"] = f"Bearer {bearer}"
        if content_type:
            all_headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=all_headers)
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            try:
                return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
            finally:
                error.close()

    def get_json(self, path: str, **options) -> tuple[int, object]:
        """GET a JSON document; returns (status, parsed body)."""
        status, headers, body = self.request("GET", path, **options)
        return status, self._parse(path, headers, body)

    def post_json(self, path: str, document: object, **options) -> tuple[int, object]:
        """POST a JSON document; returns (status, parsed body)."""
        status, headers, body = self.request("POST", path, json.dumps(document).encode(),
                                             content_type="application/json", **options)
        return status, self._parse(path, headers, body)

    def _parse(self, path: str, headers: dict[str, str], body: bytes) -> object:
        content_type = headers.get("content-type", "")
        assert content_type.startswith("application/json"), \
            f"{path} answered Content-Type {content_type!r}, not JSON: {body[:500]!r}"
        return json.loads(body)

    # -- indexing ---------------------------------------------------------------------------------

    def index_folder(self, folder: Path, collection: str = "default", timeout: float = INDEX_TIMEOUT,
                     model: str | None = None) -> dict:
        """Index a folder on the server (recursively) as a job, with the server's default model or
        `model`; waits until it finishes and returns the job."""
        body = {"path": str(folder), "recursive": True, **({"model": model} if model else {})}
        status, job = self.post_json(f"/v1/collections/{collection}/jobs", body)
        assert status == 202, f"POST /v1/collections/{collection}/jobs answered {status}: {job}\n{self.describe_logs()}"
        assert isinstance(job, dict) and job.get("state") in ("queued", "running", "finished"), job
        deadline = time.monotonic() + timeout
        path = f"/v1/jobs/{job['id']}"
        while True:
            status, job = self.get_json(path)
            assert status == 200, f"GET {path} answered {status}: {job}"
            if job["state"] == "finished":
                return job
            assert job["state"] != "failed", f"indexing {folder} failed: {job}\n{self.describe_logs()}"
            assert time.monotonic() < deadline, \
                f"indexing {folder} did not finish within {timeout:.0f} s: {job}\n{self.describe_logs()}"
            time.sleep(0.5)


class _ServerLogs:
    """A pytest plugin that shows, in the terminal summary, the logs of servers whose tests failed."""

    name = "lookalike-server-logs"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for text in self.texts:
            terminalreporter.write_sep("-", "lookalike serve logs")
            terminalreporter.write_line(text)


def report_logs_if_failed(request: pytest.FixtureRequest, server: ServerProcess, failed_before: int) -> None:
    """At a fixture's teardown: when a test failed since ``failed_before``, show the server's logs.

    Output captured at a module fixture's teardown is shown only if the module's last test
    failed, so the logs go to the end of pytest's report instead.
    """
    if request.session.testsfailed <= failed_before:
        return
    manager = request.config.pluginmanager
    plugin = manager.get_plugin(_ServerLogs.name)
    if plugin is None:
        plugin = _ServerLogs()
        manager.register(plugin, _ServerLogs.name)
    plugin.texts.append(f"server at {server.base_url} (a test using it failed)\n{server.describe_logs()}")


def keyless_indexed_server(tmp: Path):
    """Generator for a module fixture: a keyless server on loopback over an empty store in
    ``tmp``, the photos indexed; stopped afterwards."""
    photos = photos_dir()
    process = ServerProcess(store=tmp / "store", index_root=photos, log_dir=tmp)
    process.start()
    try:
        process.index_folder(photos)
        yield process
    finally:
        process.stop()


def start_indexed_server(request: pytest.FixtureRequest, tmp: Path, *, admin_key: str,
                         read_key: str | None = None):
    """Generator for a module fixture: a server on an empty store in ``tmp``, the photos indexed.

    Yields the running ServerProcess; stops it afterwards, showing its logs if a test failed.
    """
    photos = photos_dir()
    failed_before = request.session.testsfailed
    server = ServerProcess(store=tmp / "store", index_root=photos, admin_key=admin_key, read_key=read_key,
                           log_dir=tmp)
    server.start()
    try:
        job = server.index_folder(photos)
        expected = len(image_files(photos))
        status, collection = server.get_json("/v1/collections/default")
        assert status == 200, collection
        assert collection["items"] == expected, \
            f"indexing {photos} left {collection['items']} items, expected {expected}: job {job}"
        yield server
    finally:
        server.stop()
        report_logs_if_failed(request, server, failed_before)
