"""Command line: ``python -m homeiq_addon serve | fetch | info``.

The same entrypoint runs inside the add-on container (options from ``/data/options.json``),
as a plain container (``HOMEIQ_*`` environment variables) and from a checkout (flags).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from homeiq_addon import __version__
from homeiq_addon.models.types import Role, RoleState
from homeiq_addon.settings import LOG_LEVELS, OPTIONS, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from homeiq_addon.models.registry import ModelRegistry

_LOGGER = logging.getLogger("homeiq_addon")


def _add_option_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per option of the table (dest = option name), each None unless given."""
    for spec in OPTIONS.values():
        if spec.kind is bool:
            group.add_argument(spec.flag, action="store_const", const=True, default=None, help=spec.help)
            continue
        default = "" if spec.default is None else f" (default {spec.default})"
        arguments: dict[str, Any] = {"default": None, "help": spec.help + default}
        if spec.choices:
            arguments |= {"choices": spec.choices, "type": spec.convert or str}
        elif spec.kind in (int, float):
            arguments["type"] = spec.kind
        group.add_argument(spec.flag, **arguments)


def build_parser() -> argparse.ArgumentParser:
    """The CLI; every option defaults to None so that only given flags override."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("options (also HOMEIQ_* variables and options.json)")
    _add_option_flags(group)

    parser = argparse.ArgumentParser(prog="python -m homeiq_addon", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", parents=[options], help="run the HTTP API")
    fetch = commands.add_parser(
        "fetch", parents=[options], help="download, convert and load models, then exit"
    )
    fetch.add_argument(
        "--roles", nargs="+", choices=[r.value for r in Role], help="default: the profile's roles"
    )
    fetch.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    commands.add_parser("info", parents=[options], help="print what /v1/models reports, as JSON")
    return parser


def configure_logging(level: str) -> None:
    """Plain lines for the add-on log; the aiohttp access log only at debug."""
    python_level = LOG_LEVELS[level]
    logging.basicConfig(level=python_level, format="%(asctime)s %(levelname)s %(message)s", force=True)
    if python_level != "DEBUG":
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _open_registry(settings: Settings) -> ModelRegistry:
    from homeiq_addon.models.registry import ModelRegistry  # noqa: PLC0415 - loads OpenVINO

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ModelRegistry(settings)


def serve(settings: Settings, registry: ModelRegistry) -> int:
    """Run the API until SIGINT/SIGTERM."""
    from aiohttp import web  # noqa: PLC0415 - keep `info`/`--help` light

    from homeiq_addon.api import create_app  # noqa: PLC0415
    from homeiq_addon.api.auth import load_or_create_token  # noqa: PLC0415

    token = load_or_create_token(settings.token_path, settings.token)
    app = create_app(settings, registry, token)
    roles = ", ".join(f"{r} = {settings.model_id(r)}" for r in settings.roles())
    _LOGGER.info(
        "HomeIQ engine %s: profile %s on %s; models: %s",
        __version__,
        settings.profile,
        settings.device,
        roles,
    )
    # Models of an earlier configuration go once this one's models are all ready (so never on a typo).
    registry.prune_when_ready()
    if settings.prefetch:
        _LOGGER.info("Fetching and loading the models now (prefetch is on)")
        registry.start_loading(settings.roles())
    else:
        _LOGGER.info("Models are fetched and loaded on first use (or POST /v1/models/load)")
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=lambda _: _LOGGER.info("Listening on http://%s:%s", settings.host, settings.port),
        access_log=logging.getLogger("aiohttp.access"),
        handle_signals=True,
    )
    _LOGGER.info("Stopped")
    return 0


def fetch(registry: ModelRegistry, roles: Sequence[Role], timeout_s: float) -> int:
    """Download, convert and load ``roles``; print progress; exit 1 if any fails."""
    registry.start_loading(list(roles))
    deadline = time.monotonic() + timeout_s
    last: dict[Role, tuple[RoleState, float | None]] = {}
    while True:
        statuses = registry.status()
        for role in roles:
            status = statuses[role]
            seen = (status.state, None if status.progress is None else round(status.progress, 1))
            if last.get(role) != seen:
                last[role] = seen
                progress = f" {status.progress:.0%}" if status.progress is not None else ""
                print(f"{role}: {status.state}{progress} ({status.model_id})", flush=True)
        states = {statuses[r].state for r in roles}
        if states <= {RoleState.READY, RoleState.ERROR}:
            break
        if time.monotonic() > deadline:
            print(f"gave up after {timeout_s:.0f} s", file=sys.stderr)
            return 1
        time.sleep(0.25)
    failed = [r for r in roles if statuses[r].state is RoleState.ERROR]
    for role in failed:
        print(f"{role} failed: {statuses[role].error}", file=sys.stderr)
    return 1 if failed else 0


def info(settings: Settings, registry: ModelRegistry) -> int:
    """Print the /v1/models report without starting the server."""
    from homeiq_addon.api.routes import models_report  # noqa: PLC0415

    print(json.dumps(models_report(settings, registry.status()), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, merge settings, dispatch. Exit codes: 0 ok, 1 failed, 2 bad options."""
    args = build_parser().parse_args(argv)
    # Inference already uses every allowed core; the tokenizer's own thread pool would only
    # compete with it (and warns after a fork). Set before any tokenizer is created.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli = {name: value for name, value in vars(args).items() if name not in {"command", "roles", "timeout"}}
    try:
        settings = load_settings(cli)
    except SettingsError as err:
        print(f"homeiq: {err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        registry = _open_registry(settings)
    except ValueError as err:  # a model id that is neither a hub id nor a model directory, ...
        print(f"homeiq: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"homeiq: cannot use data dir {settings.data_dir}: {err}", file=sys.stderr)
        return 1
    try:
        return _dispatch(args, settings, registry)
    except OSError as err:  # port in use, data dir not writable, ...
        _LOGGER.error("Stopped: %s", err)
        return 1
    finally:
        registry.close()


def _dispatch(args: argparse.Namespace, settings: Settings, registry: ModelRegistry) -> int:
    if args.command == "serve":
        return serve(settings, registry)
    if args.command == "fetch":
        requested = [Role(r) for r in args.roles] if args.roles else settings.roles()
        return fetch(registry, settings.serving_roles(requested), args.timeout)
    return info(settings, registry)


if __name__ == "__main__":
    sys.exit(main())
