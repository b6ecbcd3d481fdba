"""Property-based fuzzing of every add-on endpoint against the real server process.

Hypothesis generates request bodies from the shape of each endpoint's schema (right and wrong
types, missing and extra fields, empty and over-long lists, texts with any Unicode code point
including control characters and lone surrogates, texts up to 12,000 characters) plus raw
bodies, content types, methods, paths and Authorization headers. Every answer must be
JSON: a success that matches the server's own OpenAPI document, or ``{"error": {code,
message}}`` with a 4xx, or a 503 that carries ``Retry-After``. Never another 5xx, never a
dropped connection, and the server answers normally afterwards.

About 2,250 requests by default (well under a minute on 2 cores with the tiny models);
``HOMEIQ_FUZZ_EXAMPLES=5`` multiplies every budget by 5 for a longer run; the examples are the
same on every run unless ``HOMEIQ_FUZZ_RANDOM=1`` (what a fresh random run finds gets a
hand-written test here, as the deeply nested bodies did).
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.addon.api_fixtures import schema_errors
from tests.addon.live_server import LiveServer, copy_cache, tiny_model_args

SCALE = float(os.environ.get("HOMEIQ_FUZZ_EXAMPLES", "1"))
# CI sends the same requests every run (no flaky failures); HOMEIQ_FUZZ_RANDOM=1 explores afresh.
RANDOM = os.environ.get("HOMEIQ_FUZZ_RANDOM") == "1"
MAX_TEXTS = 6
MAX_CHARS = 12_000
MAX_DOCUMENTS = 6
MAX_BODY_KB = 96
ROLES = ["embedding", "reranker", "classifier"]
# Every test adds its share; the last test checks the total (>= 2,000 at the default scale).
BUDGETS = {
    "embed": 350,
    "rerank": 300,
    "classify": 250,
    "suggest": 400,
    "models_load": 150,
    "paths": 250,
    "raw": 550,
}
REQUESTS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
STARTED: list[float] = []


def budget(name: str) -> int:
    """Examples for one test at the configured scale."""
    return max(1, int(BUDGETS[name] * SCALE))


def fuzz_settings(name: str) -> Callable[[Any], Any]:
    """Hypothesis settings: no deadline (a model call may be slow on a busy machine), no database."""
    return settings(
        max_examples=budget(name),
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ---- the server under test -------------------------------------------------------------------


class Fuzzer:
    """Sends requests over one keep-alive connection and checks every answer."""

    def __init__(self, server: LiveServer, openapi: dict[str, Any]) -> None:
        self.server = server
        self.openapi = openapi
        self._conn: http.client.HTTPConnection | None = None

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, Any],
        *,
        label: str,
    ) -> tuple[int, Any]:
        """One request; the checked status and decoded body."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self.server.connection(timeout=60)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException) as err:
                # aiohttp closes a keep-alive connection after some errors (413 with an unread
                # body): reconnect once; a second failure means the server dropped the request.
                self._conn.close()
                self._conn = None
                if attempt == 2 or not self.server.alive():
                    raise AssertionError(f"{method} {path} got no answer: {err!r}") from err
        REQUESTS[label] += 1
        STATUSES[response.status] += 1
        if response.will_close:
            self._conn.close()
            self._conn = None
        return response.status, self._check(method, path, response, raw)

    def _check(self, method: str, path: str, response: http.client.HTTPResponse, raw: bytes) -> Any:
        status = response.status
        where = f"{method} {path} -> {status}"
        if status >= 500:
            assert status == 503, f"{where}: {raw[:500]!r}"
            assert int(response.getheader("Retry-After") or "0") >= 1, f"{where} without Retry-After"
        if method == "HEAD":
            return None
        if status == 400 and (response.getheader("Content-Type") or "").startswith("text/plain"):
            # aiohttp's HTTP parser refuses a malformed request (a control character in a header)
            # before any application code runs: a plain-text 400, and the connection is closed.
            assert raw.startswith(b"Invalid header value char"), f"{where}: {raw[:300]!r}"
            return None
        assert (response.getheader("Content-Type") or "").startswith("application/json"), where
        body = json.loads(raw)
        if status >= 400:
            assert (
                schema_errors(body, self.openapi["components"]["schemas"]["Error"], root=self.openapi) == []
            )
            assert body["error"]["code"] and body["error"]["message"], where
        else:
            operation = self.openapi["paths"][path][method.lower()]
            schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
            errors = schema_errors(body, schema, root=self.openapi)
            assert errors == [], f"{where}: {errors}"
        return body

    def post_json(self, path: str, body: Any, *, label: str, auth: bool = True) -> tuple[int, Any]:
        """POST ``body`` as JSON (ASCII-escaped, so lone surrogates travel as ``\\udXXX``)."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.server.token}"
        return self.send("POST", path, json.dumps(body).encode(), headers, label=label)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> Iterator[LiveServer]:
    """The full profile over the tiny models, small list limits, texts up to 12,000 characters."""
    tmp = tmp_path_factory.mktemp("fuzz")
    data = copy_cache(fp32_data_dir, tmp / "data")
    args = [
        *tiny_model_args(tiny_models, data),
        "--max-texts", str(MAX_TEXTS), "--max-chars", str(MAX_CHARS),
        "--max-documents", str(MAX_DOCUMENTS), "--max-body-kb", str(MAX_BODY_KB),
        "--max-queue", "64",
    ]  # fmt: skip
    with LiveServer(args, tmp / "server.log") as live:
        live.wait_healthy()
        models = live.load(ROLES)
        assert all(models[r]["state"] == "ready" for r in ROLES), models
        STARTED.append(time.monotonic())
        yield live
        log = live.log()
    assert "Unexpected error" not in log, log[-5000:]  # the error middleware's 500s
    # The only tracebacks allowed: aiohttp's HTTP parser logging a request it refused (400).
    for block in log.split("Traceback (most recent call last)")[1:]:
        assert "BadHttpMessage" in block.split("\n20")[0], block[:3000]


@pytest.fixture(scope="module")
def fuzzer(server: LiveServer) -> Iterator[Fuzzer]:
    status, openapi, _ = server.request("GET", "/openapi.json")
    assert status == 200
    fuzzer = Fuzzer(server, openapi)
    yield fuzzer
    fuzzer.close()


# ---- strategies ----------------------------------------------------------------------------------

# Every code point, surrogates and control characters included.
any_char = st.characters(codec=None, categories=None)
nasty = st.sampled_from(
    ["\x00", "\x07", "\x1b[31m", "\u202e", "\ufeff", "\u200b", "\ud800", "\udfff", "\U0001f4a1", "e\u0301",
     "\\", '"', "\n\r\t", "\uffff", "Ω≈ç√", "﷽"]
)  # fmt: skip
short_text = st.text(any_char, max_size=40) | st.text(max_size=40)
long_text = st.builds(
    lambda n, c: c * n,
    st.sampled_from([MAX_CHARS - 1, MAX_CHARS, MAX_CHARS + 1, 10_000]),
    st.sampled_from(["x", "é", "💡", " ", "\x00"]),
)
text = st.one_of(
    short_text,
    st.lists(nasty | short_text, min_size=1, max_size=4).map("".join),
    st.just("Turn on the kitchen light at 07:00 on weekdays"),
    long_text,
)
json_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
any_json = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# A list of texts around the limits, sometimes with a value of the wrong type in it.
texts = st.lists(
    text | json_scalar.filter(lambda v: not isinstance(v, str)), max_size=MAX_TEXTS + 2
) | st.lists(text, min_size=0, max_size=MAX_TEXTS)
# Texts the schema accepts (1..MAX_CHARS characters, valid Unicode): requests that reach the models.
valid_text = text.filter(lambda t: 0 < len(t) <= MAX_CHARS and not any("\ud800" <= c <= "\udfff" for c in t))
valid_texts = st.lists(valid_text, min_size=1, max_size=MAX_TEXTS)
counts = st.integers(min_value=-2, max_value=MAX_TEXTS + 2) | st.sampled_from([True, 2**64, 1.5, "3", None])


@st.composite
def shaped(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]], required: set[str]) -> Any:
    """An object with the endpoint's fields, each maybe missing, of a wrong type, or extra."""
    if draw(st.integers(0, 19)) == 0:
        return draw(any_json)  # not even an object, sometimes
    body: dict[str, Any] = {}
    for name, strategy in fields.items():
        presence = draw(st.integers(0, 9))
        if presence == 0 and name in required:
            continue  # a required field missing
        if presence == 0 or (presence <= 3 and name not in required):
            continue  # an optional field left out
        body[name] = draw(any_json) if presence == 9 else draw(strategy)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(min_size=1, max_size=10))] = draw(any_json)
    return body


pattern = st.fixed_dictionaries({"id": text, "text": text}) | st.fixed_dictionaries(
    {"id": st.sampled_from(["p1", "p2", "known:1", "p1"]), "text": text}
)
patterns = st.lists(pattern, max_size=MAX_TEXTS + 1) | st.lists(
    st.builds(lambda i, t: {"id": f"p{i}", "text": t}, st.integers(0, 99), text),
    min_size=1,
    max_size=MAX_TEXTS,
    unique_by=lambda p: p["id"],
)


# ---- the fuzz tests -----------------------------------------------------------------------------


@fuzz_settings("embed")
@given(
    body=st.fixed_dictionaries(
        {"texts": valid_texts}, optional={"encoding": st.sampled_from(["float", "base64"])}
    )
    | shaped({"texts": texts, "encoding": st.sampled_from(["float", "base64", "hex", ""])}, {"texts"})
)
def test_fuzzed_embed_requests_get_json_answers_never_a_crash(fuzzer: Fuzzer, body: Any) -> None:
    status, answer = fuzzer.post_json("/v1/embed", body, label="embed")
    if status == 200:
        assert len(answer["embeddings"]) == len(body["texts"])


@fuzz_settings("rerank")
@given(
    body=st.fixed_dictionaries(
        {"query": valid_text, "documents": valid_texts},
        optional={"top_k": st.integers(1, MAX_DOCUMENTS)},
    )
    | shaped(
        {"query": text, "documents": st.lists(text, max_size=MAX_DOCUMENTS + 1) | texts, "top_k": counts},
        {"query", "documents"},
    )
)
def test_fuzzed_rerank_requests_get_json_answers_never_a_crash(fuzzer: Fuzzer, body: Any) -> None:
    status, answer = fuzzer.post_json("/v1/rerank", body, label="rerank")
    if status == 200:
        indices = [r["index"] for r in answer["results"]]
        assert len(set(indices)) == len(indices)
        assert all(0 <= i < len(body["documents"]) for i in indices)


@fuzz_settings("classify")
@given(body=st.fixed_dictionaries({"texts": valid_texts}) | shaped({"texts": texts}, {"texts"}))
def test_fuzzed_classify_requests_get_json_answers_never_a_crash(fuzzer: Fuzzer, body: Any) -> None:
    status, answer = fuzzer.post_json("/v1/classify", body, label="classify")
    if status == 200:
        assert len(answer["results"]) == len(body["texts"])


@fuzz_settings("suggest")
@given(
    body=st.fixed_dictionaries(
        {
            "patterns": st.lists(
                st.builds(lambda i, t: {"id": f"p{i}", "text": t}, st.integers(0, 99), valid_text),
                min_size=1,
                max_size=MAX_TEXTS,
                unique_by=lambda p: p["id"],
            )
        },
        optional={
            "query": valid_text,
            "known": st.lists(valid_text, max_size=MAX_TEXTS),
            "top_k": st.integers(1, MAX_TEXTS),
            "dedupe_threshold": st.floats(0.5, 1.0),
        },
    )
    | shaped(
        {
            "patterns": patterns,
            "query": text,
            "known": texts,
            "top_k": counts,
            "dedupe_threshold": st.floats(allow_nan=False) | st.sampled_from([0.5, 0.9, 1.0, 1, 2]),
        },
        {"patterns"},
    )
)
def test_fuzzed_suggest_requests_get_json_answers_never_a_crash(fuzzer: Fuzzer, body: Any) -> None:
    status, answer = fuzzer.post_json("/v1/suggest", body, label="suggest")
    if status == 200:
        returned = [s["id"] for s in answer["suggestions"]] + [d["id"] for d in answer["duplicates"]]
        assert set(returned) <= {p["id"] for p in body["patterns"]}


@fuzz_settings("models_load")
@given(
    body=shaped({"roles": st.lists(st.sampled_from([*ROLES, "translator", ""]) | text, max_size=4)}, set())
    | st.none()
)
def test_fuzzed_model_load_requests_get_json_answers_never_a_crash(fuzzer: Fuzzer, body: Any) -> None:
    if body is None:  # no body at all: load every role of the profile
        headers = {"Authorization": f"Bearer {fuzzer.server.token}"}
        status, _ = fuzzer.send("POST", "/v1/models/load", None, headers, label="models_load")
    else:
        status, _ = fuzzer.post_json("/v1/models/load", body, label="models_load")
    assert status in {202, 400, 413, 415, 422}


PATHS = ["/health", "/openapi.json", "/v1/models", "/v1/embed", "/v1/models/load", "/v1/suggest"]
path_strategy = st.sampled_from(PATHS) | st.builds(
    lambda p, q: "/" + p + q,
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=30),
    st.sampled_from(["", "?x=1", "?texts=a", "/../etc/passwd", "/%2e%2e/%2e%2e"]),
)


@fuzz_settings("paths")
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=path_strategy,
    auth=st.booleans(),
)
def test_fuzzed_methods_and_paths_get_json_answers_never_a_crash(
    fuzzer: Fuzzer, method: str, path: str, auth: bool
) -> None:
    headers = {"Authorization": f"Bearer {fuzzer.server.token}"} if auth else {}
    if method == "POST" and path in {"/v1/embed", "/v1/suggest"}:
        return  # bodies are fuzzed above; an empty POST here would be the same 400 again
    status, _ = fuzzer.send(method, path, None, headers, label="paths")
    if not auth and path.split("?", maxsplit=1)[0] != "/health":
        assert status == 401


content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/json; charset=latin-1", "", "application/\x7f"]
)  # fmt: skip
raw_bodies = st.one_of(
    st.binary(max_size=200),
    any_json.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [b"", b"{", b'{"texts": [', b"[]", b"null", b"NaN", b'{"texts": ["a"]}garbage', b"\xef\xbb\xbf{}",
         b'{"texts": ["\xff\xfe"]}', b'{"texts": ["a"], "texts": 1}', b'{"texts": [' * 2000]
    ),
    st.integers(MAX_BODY_KB * 1024 - 10, MAX_BODY_KB * 1024 + 10).map(
        lambda n: b'{"texts": ["' + b"y" * max(0, n - 14) + b'"]}'
    ),
)  # fmt: skip
auth_headers = st.sampled_from(
    ["", "Bearer", "Bearer ", "bearer {t}", "Basic {t}", "{t}", "Bearer {t}", "Bearer {t} ", "Bearer {t}x",
     "Bearer \u00e9t\u00e9", "Bearer " + "a" * 4000]
)  # fmt: skip


@fuzz_settings("raw")
@given(
    path=st.sampled_from(["/v1/embed", "/v1/rerank", "/v1/classify", "/v1/suggest", "/v1/models/load"]),
    body=raw_bodies,
    content_type=content_types,
    auth=auth_headers
    | st.binary(min_size=1, max_size=20).map(
        lambda b: b"Bearer " + bytes(c for c in b if c >= 0x20 and c != 0x7F)
    ),
)
def test_fuzzed_raw_bodies_headers_and_content_types_never_crash(
    fuzzer: Fuzzer, path: str, body: bytes, content_type: str, auth: str | bytes
) -> None:
    headers: dict[str, Any] = {}
    if content_type:
        headers["Content-Type"] = content_type
    if isinstance(auth, bytes):
        headers["Authorization"] = auth  # raw header bytes, not necessarily ASCII or UTF-8
    elif auth:
        headers["Authorization"] = auth.format(t=fuzzer.server.token).encode("utf-8")
    status, _ = fuzzer.send("POST", path, body, headers, label="raw")
    right_token = auth in ("Bearer {t}", "bearer {t}", "Bearer {t} ")
    if not right_token:
        assert status in {400, 401}  # 400: the HTTP parser refused a malformed header first


def test_ten_thousand_character_texts_are_served_by_every_endpoint(fuzzer: Fuzzer) -> None:
    """Hand-written: long texts (allowed up to 12,000 characters here) are cut by the tokenizers."""
    long_text = "Turn on the hallway light when motion is detected after sunset. " * 160  # 10,240
    long_text = long_text[:10_000]
    status, body = fuzzer.post_json("/v1/embed", {"texts": [long_text, "short"]}, label="hand")
    assert status == 200 and len(body["embeddings"]) == 2
    status, body = fuzzer.post_json(
        "/v1/rerank", {"query": long_text, "documents": [long_text, "a"]}, label="hand"
    )
    assert status == 200 and len(body["results"]) == 2
    status, body = fuzzer.post_json("/v1/classify", {"texts": [long_text]}, label="hand")
    assert status == 200 and len(body["results"]) == 1
    patterns = [{"id": "long", "text": long_text}, {"id": "short", "text": "Lock the door at 23:00"}]
    status, body = fuzzer.post_json("/v1/suggest", {"patterns": patterns, "query": long_text}, label="hand")
    assert status == 200
    status, body = fuzzer.post_json("/v1/embed", {"texts": ["x" * (MAX_CHARS + 1)]}, label="hand")
    assert status == 422 and body["error"]["message"].startswith("texts[0]")


@pytest.mark.parametrize("path", ["/v1/embed", "/v1/suggest", "/v1/models/load"])
def test_deeply_nested_json_is_a_400_not_a_crash(fuzzer: Fuzzer, path: str) -> None:
    """Hand-written (the fuzzer found it): nesting deeper than Python's recursion limit."""
    headers = {"Authorization": f"Bearer {fuzzer.server.token}", "Content-Type": "application/json"}
    for body in (b"[" * 40_000 + b"]" * 40_000, b'{"texts": [' * 3000):
        status, answer = fuzzer.send("POST", path, body, headers, label="hand")
        assert status == 400 and answer["error"]["code"] == "malformed_json", answer


def test_after_the_fuzzing_the_server_still_answers_and_counted_enough(
    fuzzer: Fuzzer, server: LiveServer
) -> None:
    started = time.monotonic()
    status, body, _ = server.request("POST", "/v1/embed", {"texts": ["still here"]})
    assert status == 200 and len(body["embeddings"]) == 1
    status, health, _ = server.request("GET", "/health", token=None)
    assert status == 200 and {m["state"] for m in health["models"].values()} == {"ready"}
    assert time.monotonic() - started < 30
    total = sum(REQUESTS.values())
    took = time.monotonic() - STARTED[0]
    statuses = dict(sorted(STATUSES.items()))
    print(f"\nfuzz: {total} requests in {took:.1f} s {dict(REQUESTS)}; statuses {statuses}")
    if set(BUDGETS) <= set(REQUESTS):  # the whole module ran (not a -k selection)
        assert total >= 2000 * min(1.0, SCALE), dict(REQUESTS)
