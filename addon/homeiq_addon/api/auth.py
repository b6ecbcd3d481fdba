"""Bearer-token authentication: a token generated on first start, kept in the data dir."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from aiohttp import web

from homeiq_addon.api.errors import ApiError, Handler

_LOGGER = logging.getLogger(__name__)

TOKEN_KEY: web.AppKey[str] = web.AppKey("token", str)
# Paths answered without a token (/health only), taken from the endpoint table.
PUBLIC_PATHS_KEY: web.AppKey[frozenset[str]] = web.AppKey("public_paths")


def load_or_create_token(path: Path, explicit: str | None = None) -> str:
    """Return the API token: ``explicit`` when given, else the stored one, else a new one.

    A new token is written with mode 0600; a racing second start reads the first one's token
    instead of overwriting it. The token itself is never logged.
    """
    if explicit:
        return explicit
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if token:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # tighten a token file someone copied in with loose permissions
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Written to a private temp file and renamed into place: never a half-written token.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    try:
        os.link(temp, path)  # fails if a racing start created one first: use that one
    except FileExistsError:
        existing = path.read_text(encoding="ascii").strip()
        if existing:
            temp.unlink()
            return existing
        temp.replace(path)  # an empty file left by a crash
    else:
        temp.unlink()
    _LOGGER.info("Generated a new API token in %s (Home Assistant receives it through discovery)", path)
    return token


def bearer_token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every endpoint but /health needs the bearer token (unknown paths too: no probing)."""
    if request.path not in request.app[PUBLIC_PATHS_KEY] and not bearer_token_matches(
        request.headers.get("Authorization"), request.app[TOKEN_KEY]
    ):
        raise ApiError(
            401,
            "unauthorized",
            "Missing or wrong bearer token (Authorization: Bearer <token>).",
            {"WWW-Authenticate": 'Bearer realm="homeiq"'},
        )
    return await handler(request)
