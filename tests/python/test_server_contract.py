"""The HTTP API of ``lookalike serve`` against its own OpenAPI document, fuzzed with Schemathesis.

A server of its own (the fuzzer creates and deletes things, so it shares nothing with other
tests) runs on an empty store in a temporary folder with an admin key and no read key, and
indexes the photo set first, so that searches have something to rank. The document is read
from the running server at ``/openapi.yaml``. Every operation is then called with generated
requests, valid and invalid ones, all carrying the admin key: Schemathesis's examples,
coverage and fuzzing phases, at most ``MAX_EXAMPLES`` fuzzed cases per operation. Each
response must not be a server error, must have a status code, a content type and a body that
the document declares for that operation.

Schemathesis runs as a pytest test with one subtest per operation
(``schemathesis.pytest.from_fixture``); a failing subtest names the operation and the check and
shows the response with a curl command that replays the request. The seed is random and is
printed with any failure; ``LOOKALIKE_FUZZ_SEED=N`` repeats a run's choices. ``schemathesis``
comes from ``requirements-server-tests.txt`` (``make setup`` installs it); without it the test
fails.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_process  # noqa: E402

try:
    import schemathesis
    import yaml  # comes with schemathesis
    SCHEMATHESIS_MISSING = None
except ImportError as error:  # the test below fails, with instructions
    SCHEMATHESIS_MISSING = str(error)

MAX_EXAMPLES = 50
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
REQUEST_TIMEOUT = 60
REAL_VALUE_SHARE = 0.5
SEED_ENV = "LOOKALIKE_FUZZ_SEED"


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """A server of this module only, with an admin key and no read key, the photo set indexed."""
    yield from server_process.start_indexed_server(request, tmp_path_factory.mktemp("contract-server"),
                                                   admin_key=server_process.new_key())


def fuzzing_config(server: server_process.ServerProcess, seed: int) -> dict:
    """Schemathesis settings (as in schemathesis.toml): where, with which key, what to check, how much.

    Made-up collection names, item ids and model names almost never exist, and most made-up
    filters and regions are invalid, so nearly every request would stop at the first check of
    its parameters. To reach the code behind them, the operations inside a collection always
    use ``default``, and about half the item ids, model names, filters and regions are taken
    from real ones (dictionaries); the rest stay made up.
    """
    # The model names come from the server; if /v1/server is broken, the fuzzing itself will say how.
    status, _, body = server.request("GET", "/v1/server")
    try:
        info = json.loads(body) if status == 200 else {}
    except ValueError:
        info = {}
    offered = info.get("models") if isinstance(info, dict) else None
    models = [model["name"] for model in offered or []
              if isinstance(model, dict) and isinstance(model.get("name"), str)]
    item_ids = [server_process.item_id(path) for path in server_process.image_files(server_process.photos_dir())]
    dictionaries = {
        "collections": {"values": ["default"]},
        "items": {"values": item_ids},
        "filters": {"values": ["{}", '{"name": {"$exists": true}}', '{"color":"red","price":{"$lt":50}}']},
        "regions": {"values": ["0,0,1,1", "0.25,0.1,0.5,0.6"]},
    }
    bindings = {"path.collection": "collections", "path.id": "items", "body.id": "items",
                "query.filter": "filters", "query.region": "regions"}
    if models:
        dictionaries["models"] = {"values": models}
        bindings.update({"query.model": "models", "body.model": "models"})
    return {
        "seed": seed,
        "base-url": server.base_url,
        "headers": {"Authorization": f"Bearer {server.admin_key}"},
        "request-timeout": REQUEST_TIMEOUT,
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        # No example database: nothing is written into the work tree, and every run starts afresh.
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "dictionaries": dictionaries,
        "parameters": {key: {"dictionary": name, "probability": REAL_VALUE_SHARE} for key, name in bindings.items()},
        "operations": [{"include-path-regex": "^/v1/collections/\\{collection\\}/",
                        "parameters": {"path.collection": "default"}}],
    }


@pytest.fixture(scope="module")
def api_schema(server):
    """The OpenAPI document the server serves, set up to call that server with the admin key."""
    status, headers, body = server.request("GET", "/openapi.yaml", key=None)
    assert status == 200, f"GET /openapi.yaml answered {status}: {body[:500]!r}"
    try:
        document, problem = yaml.safe_load(body), None
    except yaml.YAMLError as error:
        document, problem = None, str(error)
    if problem:
        pytest.fail(f"/openapi.yaml is not valid YAML: {problem}", pytrace=False)
    assert isinstance(document, dict) and str(document.get("openapi", "")).startswith("3."), \
        f"/openapi.yaml is not an OpenAPI 3 document: {body[:200]!r}"
    seed = int(os.environ.get(SEED_ENV) or secrets.randbelow(2**31))
    # Shown with any failure (pytest prints a failing test's captured setup output).
    print(f"schemathesis seed {seed}: run with {SEED_ENV}={seed} to make the same choices again")
    config = schemathesis.Config.from_dict(fuzzing_config(server, seed))
    return schemathesis.openapi.from_url(server.base_url + "/openapi.yaml", config=config)


if SCHEMATHESIS_MISSING is None:
    schema = schemathesis.pytest.from_fixture("api_schema")

    @schema.parametrize()
    def test_api_conforms_to_its_openapi_document(case, server):
        if not server.running:
            pytest.fail(f"lookalike serve is no longer running (exit status {server.process.returncode}): an "
                        "earlier request, perhaps of this same operation, ended it; its stderr is at the end "
                        "of this report", pytrace=False)
        case.call_and_validate()
else:
    def test_api_conforms_to_its_openapi_document():
        pytest.fail(f"schemathesis is not installed ({SCHEMATHESIS_MISSING}): run `make setup`, which installs "
                    "requirements-server-tests.txt into .venv", pytrace=False)


def test_every_note_the_engine_writes_is_declared():
    """A search's notes carry a code from a closed list in the OpenAPI document: every code the
    engine's sources write (`Note(code: "...")`) must be in it, so no client meets one unannounced
    (a fuzzed search reaches only some of them)."""
    import re
    document = yaml.safe_load((server_process.REPO / "Sources/LookalikeServer/Web/openapi.yaml").read_text())
    declared = set(document["components"]["schemas"]["SearchResult"]["properties"]["notes"]["items"]["properties"]["code"]["enum"])
    written = set()
    for source in (server_process.REPO / "Sources/Lookalike").rglob("*.swift"):
        written.update(re.findall(r'Note\(\s*code:\s*"([a-z_]+)"', source.read_text()))
    assert len(written) >= 5, f"the notes' codes were not found in the sources (found {sorted(written)})"
    assert written <= declared, f"codes written but not declared in openapi.yaml: {sorted(written - declared)}"


def test_every_error_code_the_server_answers_is_declared():
    """An error's code comes from a closed list in the OpenAPI document: every code the server's
    sources answer with (`APIError(.status, "code", ...)`) must be in it, including those a fuzzer
    with the right key never meets (too many wrong keys)."""
    import re
    document = yaml.safe_load((server_process.REPO / "Sources/LookalikeServer/Web/openapi.yaml").read_text())
    declared = set(document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    answered = set()
    for source in (server_process.REPO / "Sources/LookalikeServer").rglob("*.swift"):
        answered.update(re.findall(r'APIError\(\s*\.[A-Za-z]+,\s*"([a-z_]+)"', source.read_text()))
    assert len(answered) >= 10, f"the error codes were not found in the sources (found {sorted(answered)})"
    assert answered <= declared, f"codes answered but not declared in openapi.yaml: {sorted(answered - declared)}"
