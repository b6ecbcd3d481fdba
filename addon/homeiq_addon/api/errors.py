"""JSON error bodies for every failure: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from homeiq_addon.models.types import ModelLoadError, ModelNotReadyError

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Codes for errors aiohttp raises itself (routing, body size).
_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "A valid bearer token is required."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This endpoint does not accept that method."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
}


class ApiError(Exception):
    """An error the client can act on, answered as JSON with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class OverloadedError(ApiError):
    """Too many requests are waiting for a model: try again shortly (HTTP 503)."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(503, "overloaded", message, {"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one JSON error shape every endpoint answers with."""
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=dict(headers or {})
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error body; an unexpected one into a logged 500."""
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.code, err.message, err.headers)
    except ModelNotReadyError as err:
        return error_response(
            503,
            "model_not_ready",
            f"The {err.role} model is {err.state}; try again in {err.retry_after_s} s.",
            {"Retry-After": str(err.retry_after_s)},
        )
    except ModelLoadError as err:
        # Not the client's fault and maybe temporary (no network yet); /v1/models has details.
        return error_response(
            503,
            "model_failed",
            f"The {err.role} model could not be loaded: {err.message}",
            {"Retry-After": "30"},
        )
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code, message = _HTTP_CODES.get(err.status, (f"http_{err.status}", err.reason))
        if err.status == 413:
            message = f"The request body is larger than the limit of {request.app[MAX_BODY_KEY]} bytes."
        headers = {"Allow": err.headers["Allow"]} if "Allow" in err.headers else None
        return error_response(err.status, code, message, headers)
    except asyncio.CancelledError:
        raise
    except Exception:
        _LOGGER.exception("Unexpected error while answering %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Internal error; the add-on log has the details.")


MAX_BODY_KEY: web.AppKey[int] = web.AppKey("max_body_bytes", int)
