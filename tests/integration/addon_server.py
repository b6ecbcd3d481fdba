"""A small, real aiohttp server speaking the add-on's HTTP API v1 on a loopback port.

It stands in for the add-on (issue 6 asks for it until the add-on lands; the end-to-end tests use
the real one). Scoring is deterministic and easy to reason about in tests:
- without a query, patterns keep the order they were sent in (the miner sorts best first);
- with a query, patterns are ranked by word overlap with the query;
- a pattern whose words overlap a `known` text (or an earlier pattern, unless the request says
  `"dedupe": "known"`) by Jaccard >= 0.8 is listed in `duplicates` (as the add-on does) and does
  not count towards `top_k`;
- /v1/models reports each role's state (`model_state`, or "loading" while `loading`), progress
  and error as the add-on does; `loading` answers the model endpoints with 503;
- requests over the limits it reports in /v1/models are refused with 422, as the add-on does;
- category and priority come from keywords; the priority's reason quotes the pattern's context
  (API 1.1) when it has one, so tests see the context arrive.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "test-token-0123456789"
VERSION = "0.1.0-test"
ROLES = ("embedding", "reranker", "classifier")
DUPLICATE_JACCARD = 0.8

_CATEGORY_WORDS = {
    "security": {"lock", "door", "alarm", "garage", "camera"},
    "energy": {"off", "heating", "power", "plug", "boiler"},
    "comfort": {"temperature", "climate", "fan", "cover", "blinds", "thermostat"},
}


def words(text: str) -> set[str]:
    """Lower-case word set of a text."""
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def jaccard(a: set[str], b: set[str]) -> float:
    """Word-set similarity."""
    return len(a & b) / len(a | b) if a | b else 0.0


def classify(text: str) -> tuple[str, str]:
    """(category, priority) from keywords."""
    found = words(text)
    for category, keywords in _CATEGORY_WORDS.items():
        if found & keywords:
            return category, "high" if category == "security" else "medium"
    return "convenience", "low"


@dataclass
class FakeAddon:
    """The server and the knobs a test turns."""

    token: str = TOKEN
    host: str = "127.0.0.1"
    port: int = 0
    version: str = VERSION
    model_state: str = "ready"
    model_progress: float | None = None
    model_error: str | None = None
    loading: bool = False
    serve_v1: bool = True
    # Answer this many /v1/suggest calls with 503 + "Retry-After: 0" (models loading on first use).
    suggest_loading_for: int = 0
    limits: dict[str, int] = field(
        default_factory=lambda: {"max_texts": 256, "max_chars": 2000, "max_documents": 256}
    )
    # When set, /v1/suggest waits for it: lets a test act while an analysis is in flight.
    gate: asyncio.Event | None = None
    # path -> (status, raw body text, headers): answer exactly this, after the auth check.
    overrides: dict[str, tuple[int, str, dict[str, str]]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._errors])
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/suggest", self._suggest)
        app.router.add_post("/v1/rerank", self._rerank)
        return app

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port the first time, the same port on a restart)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server  # aiohttp exposes the bound port only here
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Close the listening socket: clients now get 'connection refused'."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def calls(self, path: str) -> list[dict[str, Any] | None]:
        """Bodies of the requests made to `path`."""
        return [body for p, body in self.requests if p == path]

    # --- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "malformed", "body is not JSON")
        self.requests.append((request.path, body))
        if (refusal := self._refusal(request)) is not None:
            return refusal
        request["body"] = body
        result: web.StreamResponse = await handler(request)
        return result

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer that replaces the endpoint's, per the knobs the test turned; None when none."""
        path = request.path
        if path != "/health" and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "missing or wrong bearer token")
        if not self.serve_v1 and path.startswith("/v1/"):
            return _error(404, "not_found", "no such endpoint")
        if (override := self.overrides.get(path)) is not None:
            status, text, headers = override
            return web.Response(status=status, text=text, headers=headers, content_type="application/json")
        retry_after = None
        if self.suggest_loading_for > 0 and path == "/v1/suggest":
            self.suggest_loading_for -= 1
            retry_after = "0"
        elif self.loading and path in {"/v1/suggest", "/v1/rerank"}:
            retry_after = "7"
        if retry_after is None:
            return None
        response = _error(503, "models_loading", "models are loading")
        response.headers["Retry-After"] = retry_after
        return response

    # --- endpoints --------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "version": VERSION,
                "models": {role: {"state": self.model_state, "id": f"test/{role}"} for role in ROLES},
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": self.version,
                "api_version": "1.1",
                "profile": "test",
                "models": {
                    role: {
                        "id": f"test/{role}",
                        "state": "loading" if self.loading else self.model_state,
                        "revision": "0",
                        "precision": "int8",
                        "source": "local",
                        "bytes_on_disk": 1,
                        "load_seconds": 0.0,
                        "progress": self.model_progress,
                        "error": self.model_error,
                        "error_code": "load_failed" if self.model_error else None,
                    }
                    for role in ROLES
                },
                "limits": self.limits,
            }
        )

    async def _suggest(self, request: web.Request) -> web.Response:
        if self.gate is not None:
            await self.gate.wait()
        body = request["body"]
        patterns = body.get("patterns") if isinstance(body, dict) else None
        if not isinstance(patterns, list) or not all(
            isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("text"), str)
            for p in patterns
        ):
            return _error(422, "invalid_patterns", "patterns must be a list of {id, text}")
        query = body.get("query")
        texts = [p["text"] for p in patterns] + list(body.get("known", [])) + ([query] if query else [])
        if (
            len(patterns) > self.limits["max_texts"]
            or len(body.get("known", [])) > self.limits["max_texts"]
            or any(not text or len(text) > self.limits["max_chars"] for text in texts)
        ):
            return _error(422, "invalid_request", "over the limits")
        known = [words(text) for text in body.get("known", [])]
        top_k = int(body.get("top_k") or len(patterns))
        scored = []
        for position, pattern in enumerate(patterns):
            text_words = words(pattern["text"])
            score = jaccard(text_words, words(query)) if query else 1.0 - position / (len(patterns) + 1)
            scored.append((round(score, 6), position, pattern, text_words))
        scored.sort(key=lambda item: (-item[0], item[1]))
        suggestions: list[dict[str, Any]] = []
        duplicates: list[dict[str, Any]] = []
        kept_words: list[tuple[str, set[str]]] = []
        kept = 0
        for score, _, pattern, text_words in scored:
            category, priority = classify(pattern["text"])
            evidence = (pattern.get("context") or {}).get("evidence") or {}
            entry: dict[str, Any] = {
                "id": pattern["id"],
                "score": score,
                "category": category,
                "priority": priority,
                "priority_reason": (
                    f"Seen on {evidence['support_days']} of {evidence['eligible_days']} days"
                    if evidence
                    else "From the words alone"
                ),
            }
            duplicate = next(
                (f"known:{i}" for i, k in enumerate(known) if jaccard(text_words, k) >= DUPLICATE_JACCARD),
                None,
            ) or next(
                (
                    pid
                    for pid, k in kept_words
                    if body.get("dedupe", "all") == "all" and jaccard(text_words, k) >= DUPLICATE_JACCARD
                ),
                None,
            )
            if duplicate is not None:
                entry["duplicate_of"] = duplicate
                duplicates.append(entry)
                continue
            if kept >= top_k:
                continue
            kept += 1
            kept_words.append((pattern["id"], text_words))
            suggestions.append(entry)
        return web.json_response(
            {
                "profile": "test",
                "models": {role: f"test/{role}" for role in ROLES},
                "suggestions": suggestions,
                "duplicates": [{"id": d["id"], "duplicate_of": d["duplicate_of"]} for d in duplicates],
            }
        )

    async def _rerank(self, request: web.Request) -> web.Response:
        body = request["body"]
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list):
            return _error(422, "invalid_fields", "query and documents are required")
        if len(documents) > self.limits["max_documents"]:
            return _error(422, "invalid_request", "too many documents")
        scores = [(index, jaccard(words(query), words(str(doc)))) for index, doc in enumerate(documents)]
        scores.sort(key=lambda item: (-item[1], item[0]))
        top_k = int(body.get("top_k") or len(scores))
        return web.json_response(
            {"model": "test/reranker", "results": [{"index": i, "score": s} for i, s in scores[:top_k]]}
        )


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
