"""The aiohttp application: middlewares, routes, batchers and their life cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from homeiq_addon.api.auth import PUBLIC_PATHS_KEY, TOKEN_KEY, auth_middleware
from homeiq_addon.api.context import (
    BATCHERS_KEY,
    OPENAPI_KEY,
    REGISTRY_KEY,
    SCHEMAS_KEY,
    SETTINGS_KEY,
    build_batchers,
)
from homeiq_addon.api.errors import MAX_BODY_KEY, error_middleware
from homeiq_addon.api.openapi import build_openapi
from homeiq_addon.api.routes import ENDPOINTS
from homeiq_addon.api.schemas import build_request_schemas
from homeiq_addon.settings import Settings

if TYPE_CHECKING:
    from homeiq_addon.models.registry import ModelRegistry


def create_app(settings: Settings, registry: ModelRegistry, token: str) -> web.Application:
    """Build the API application; the caller owns (and closes) ``registry``."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=settings.limits.max_body_bytes,
    )
    app[SETTINGS_KEY] = settings
    app[REGISTRY_KEY] = registry
    app[TOKEN_KEY] = token
    app[MAX_BODY_KEY] = settings.limits.max_body_bytes
    app[SCHEMAS_KEY] = build_request_schemas(settings.limits)
    app[OPENAPI_KEY] = build_openapi(app[SCHEMAS_KEY])
    app[PUBLIC_PATHS_KEY] = frozenset(e.path for e in ENDPOINTS if e.public)
    app[BATCHERS_KEY] = build_batchers(registry, settings)
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
    app.on_startup.append(_start_batchers)
    app.on_shutdown.append(_stop_batchers)
    return app


async def _start_batchers(app: web.Application) -> None:
    for batcher in app[BATCHERS_KEY].all():
        batcher.start()


async def _stop_batchers(app: web.Application) -> None:
    for batcher in app[BATCHERS_KEY].all():
        await batcher.close()
