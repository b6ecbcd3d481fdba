"""Client for the HomeIQ add-on's HTTP API (v1).

The add-on runs the model stack; this client only speaks the JSON contract. Errors are mapped
to a small exception hierarchy so that the coordinator and the config flow can translate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from homeassistant.util.json import json_loads

# Timeouts sized for a Raspberry Pi: /health must answer fast; an analysis embeds, reranks and
# classifies up to a few hundred texts on a slow CPU and can take tens of seconds.
HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=15)
MODELS_TIMEOUT = aiohttp.ClientTimeout(total=30)
ANALYSIS_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=15)


class HomeIQError(Exception):
    """Base error of the add-on client."""


class HomeIQConnectionError(HomeIQError):
    """The add-on could not be reached (refused, DNS, timeout)."""


class HomeIQAuthError(HomeIQError):
    """The add-on rejected the token (HTTP 401)."""


class HomeIQModelsLoadingError(HomeIQError):
    """The add-on is busy or still loading its models (HTTP 503); retry later."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        """Keep the server's Retry-After hint (seconds), if it sent one."""
        super().__init__(message)
        self.retry_after = retry_after


class HomeIQResponseError(HomeIQError):
    """The add-on answered something that does not follow the v1 contract."""


class HomeIQUnsupportedApiError(HomeIQResponseError):
    """The server does not offer API v1 (wrong service or incompatible version)."""


class HomeIQRequestError(HomeIQError):
    """The add-on refused the request (HTTP 400/413/422) with a JSON error body."""

    def __init__(self, message: str, status: int, code: str) -> None:
        """Keep the HTTP status and the contract's error code."""
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The add-on's request limits (reported by /v1/models); requests are trimmed to fit them."""

    max_texts: int = 256
    max_chars: int = 2000
    max_documents: int = 256

    @classmethod
    def from_models(cls, models: Mapping[str, Any]) -> RequestLimits:
        """Read `limits` from a /v1/models answer, keeping the defaults for anything missing."""
        raw = models.get("limits")
        if not isinstance(raw, Mapping):
            return cls()
        values = {}
        for key in ("max_texts", "max_chars", "max_documents"):
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                values[key] = value
        return cls(**values)


# Model states the add-on reports per role; the busy ones finish by themselves.
MODEL_STATES = ("not_loaded", "downloading", "converting", "loading", "ready", "error")
BUSY_MODEL_STATES = frozenset({"downloading", "converting", "loading"})


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One role's model as GET /v1/models reports it."""

    model_id: str
    state: str
    progress: float | None = None
    """0..1 while downloading or converting, when the add-on knows it."""
    error: str | None = None
    """The add-on's reason, in words, when the state is ``error``."""
    error_code: str | None = None
    """Its kind: ``converter_missing``, ``not_found``, ``offline``, ``download_failed``, ``disk_full``..."""
    precision: str | None = None

    @property
    def busy(self) -> bool:
        """Downloading, converting or loading: it becomes ready (or fails) by itself."""
        return self.state in BUSY_MODEL_STATES


@dataclass(frozen=True, slots=True)
class AddonStatus:
    """The add-on's version, profile and per-role model states (GET /v1/models)."""

    version: str
    profile: str | None
    models: dict[str, ModelStatus] = field(default_factory=dict)

    @property
    def failed_roles(self) -> list[str]:
        """Model roles whose loading failed."""
        return sorted(role for role, model in self.models.items() if model.state == "error")

    @property
    def busy_roles(self) -> list[str]:
        """Model roles being downloaded, converted or loaded."""
        return sorted(role for role, model in self.models.items() if model.busy)


@dataclass(frozen=True, slots=True)
class RankedSuggestion:
    """One entry of the /v1/suggest answer."""

    id: str
    score: float
    category: str | None
    priority: str | None
    duplicate_of: str | None = None
    priority_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SuggestResult:
    """The answer of POST /v1/suggest."""

    profile: str | None
    models: dict[str, Any]
    suggestions: list[RankedSuggestion]


class HomeIQClient:
    """Talks to one add-on over HA's shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, host: str, port: int, token: str) -> None:
        """Remember where the add-on is and the bearer token it expects."""
        self._session = session
        self.host = host
        self.port = port
        self._token = token
        self.limits = RequestLimits()

    @property
    def base_url(self) -> str:
        """The add-on's base URL (also shown as the device's configuration URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def async_status(self) -> AddonStatus:
        """GET /v1/models: checks the token and the API version; reads the limits and model states."""
        body = await self._request("GET", "/v1/models", client_timeout=MODELS_TIMEOUT)
        version, profile, models = body.get("version"), body.get("profile"), body.get("models")
        if not isinstance(version, str) or not isinstance(models, Mapping):
            raise HomeIQResponseError("/v1/models answer lacks version or models")
        try:
            statuses = {
                str(role): ModelStatus(
                    model_id=str(model["id"]),
                    state=str(model["state"]),
                    progress=float(progress)
                    if isinstance(progress := model.get("progress"), int | float)
                    else None,
                    error=str(error) if (error := model.get("error")) else None,
                    error_code=str(code) if (code := model.get("error_code")) else None,
                    precision=str(precision) if (precision := model.get("precision")) else None,
                )
                for role, model in models.items()
            }
        except (KeyError, TypeError) as err:
            raise HomeIQResponseError(f"/v1/models answer has a malformed model: {err!r}") from err
        self.limits = RequestLimits.from_models(body)
        return AddonStatus(
            version=version, profile=profile if isinstance(profile, str) else None, models=statuses
        )

    async def async_suggest(
        self,
        patterns: Sequence[Mapping[str, Any]],
        *,
        query: str | None = None,
        known: Sequence[str] = (),
        top_k: int | None = None,
    ) -> SuggestResult:
        """POST /v1/suggest: rank, dedupe and classify pattern texts.

        Each pattern has an ``id``, a ``text`` and optionally a ``context`` (API 1.1). Patterns
        come best first: beyond the add-on's `max_texts` the tail is left out, and texts are cut to
        `max_chars`, so that a big home gets its best habits ranked rather than a 413.
        """
        limits = self.limits
        payload: dict[str, Any] = {
            "patterns": [
                {"id": p["id"], "text": str(p["text"])[: limits.max_chars]}
                | ({"context": dict(p["context"])} if p.get("context") else {})
                for p in patterns[: limits.max_texts]
            ]
        }
        # The pattern engine keeps one pattern per habit; words alone would merge "turns on at 09:25"
        # with "turns off at 10:40". Only existing automations and decided suggestions count.
        payload["dedupe"] = "known"
        if query:
            payload["query"] = query[: limits.max_chars]
        if known_texts := [text[: limits.max_chars] for text in known if text][: limits.max_texts]:
            payload["known"] = known_texts
        if top_k is not None:
            payload["top_k"] = max(1, min(top_k, limits.max_texts))
        body = await self._request("POST", "/v1/suggest", payload=payload, client_timeout=ANALYSIS_TIMEOUT)
        raw, duplicates = body.get("suggestions"), body.get("duplicates", [])
        if not isinstance(raw, list) or not isinstance(duplicates, list):
            raise HomeIQResponseError("/v1/suggest answer lacks a suggestions list")
        try:
            suggestions = [
                RankedSuggestion(
                    id=str(item["id"]),
                    score=float(item["score"]),
                    category=item.get("category"),
                    priority=item.get("priority"),
                    priority_reason=str(reason) if (reason := item.get("priority_reason")) else None,
                )
                for item in raw
            ]
            suggestions += [
                RankedSuggestion(
                    id=str(item["id"]),
                    score=0.0,
                    category=None,
                    priority=None,
                    duplicate_of=str(item["duplicate_of"]),
                )
                for item in duplicates
            ]
        except (KeyError, TypeError, ValueError) as err:
            raise HomeIQResponseError(f"/v1/suggest answer has a malformed entry: {err!r}") from err
        models = body.get("models")
        profile = body.get("profile")
        return SuggestResult(
            profile=profile if isinstance(profile, str) else None,
            models=dict(models) if isinstance(models, Mapping) else {},
            suggestions=suggestions,
        )

    async def async_rerank(
        self, query: str, documents: Sequence[str], top_k: int | None = None
    ) -> list[tuple[int, float]]:
        """POST /v1/rerank: (document index, score) pairs, best first.

        More documents than the add-on takes at once are sent in chunks: cross-encoder scores
        are per pair, so they compare across chunks.
        """
        limits = self.limits
        query = query[: limits.max_chars]
        ranked: list[tuple[int, float]] = []
        for offset in range(0, len(documents), limits.max_documents):
            chunk = [doc[: limits.max_chars] for doc in documents[offset : offset + limits.max_documents]]
            payload: dict[str, Any] = {"query": query, "documents": chunk}
            body = await self._request("POST", "/v1/rerank", payload=payload, client_timeout=ANALYSIS_TIMEOUT)
            results = body.get("results")
            if not isinstance(results, list):
                raise HomeIQResponseError("/v1/rerank answer lacks a results list")
            try:
                chunk_ranked = [(int(r["index"]), float(r["score"])) for r in results]
            except (KeyError, TypeError, ValueError) as err:
                raise HomeIQResponseError(f"/v1/rerank answer has a malformed entry: {err!r}") from err
            if any(not 0 <= index < len(chunk) for index, _ in chunk_ranked):
                raise HomeIQResponseError("/v1/rerank answer points outside the documents")
            ranked += [(offset + index, score) for index, score in chunk_ranked]
        ranked.sort(key=lambda pair: (-pair[1], pair[0]))
        return ranked[:top_k] if top_k is not None else ranked

    async def _request(
        self,
        method: str,
        path: str,
        *,
        client_timeout: aiohttp.ClientTimeout,
        payload: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON object, or raise a HomeIQError."""
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        try:
            async with self._session.request(
                method, self.base_url + path, json=payload, headers=headers, timeout=client_timeout
            ) as response:
                text = await response.text()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as err:
            raise HomeIQConnectionError(f"{method} {path}: {err!r}") from err
        if status == 401:
            raise HomeIQAuthError(f"{method} {path}: the add-on rejected the token")
        if status == 404:
            raise HomeIQUnsupportedApiError(f"{method} {path}: not found; the server does not speak API v1")
        if status == 503:
            raise HomeIQModelsLoadingError(
                f"{method} {path}: the add-on is busy or loading its models", _parse_retry_after(retry_after)
            )
        body = _decode_object(text, f"{method} {path}")
        if status >= 400:
            error = body.get("error")
            code = str(error.get("code", "error")) if isinstance(error, Mapping) else "error"
            message = str(error.get("message", "")) if isinstance(error, Mapping) else ""
            raise HomeIQRequestError(f"{method} {path}: HTTP {status} {code}: {message}", status, code)
        return body


def _decode_object(text: str, where: str) -> dict[str, Any]:
    """Decode a JSON object, or raise HomeIQResponseError."""
    try:
        decoded = json_loads(text)
    except ValueError as err:  # orjson's JSONDecodeError is a ValueError
        raise HomeIQResponseError(f"{where}: the answer is not JSON") from err
    if not isinstance(decoded, dict):
        raise HomeIQResponseError(f"{where}: the answer is not a JSON object")
    return decoded


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (only the delta-seconds form is used by the add-on)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
