"""The add-on's HTTP API (v1): routes, request schemas, auth, errors, batching, OpenAPI."""

from homeiq_addon.api.app import create_app

__all__ = ["create_app"]
