"""The real add-on server in its own process (``python -m homeiq_addon serve``) on loopback.

Reliability tests run the server exactly as the add-on's s6 service does, so that what they
measure (status codes, its log, the RSS of its process) is what a user's server would show.
The token travels in ``HOMEIQ_TOKEN``, never on the command line (``ps`` shows argv).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "reliability-token-5f1d2c3b4a69788796a5b4c3"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(token: str, *, hub: bool = False) -> dict[str, str]:
    """The environment of the server: this checkout's package, the token, nothing from HOMEIQ_*.

    Without ``hub`` the Hugging Face client is switched offline, so nothing can leave loopback.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOMEIQ_", "HF_"))}
    env.update(
        PYTHONPATH=f"{ROOT / 'addon'}{os.pathsep}{ROOT}",
        HOMEIQ_TOKEN=token,
        TOKENIZERS_PARALLELISM="false",
        PYTHONDONTWRITEBYTECODE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    if not hub:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def tiny_model_args(models: dict[str, Path], data_dir: Path) -> list[str]:
    """Flags that serve the tiny FP32 models (the session fixture's converted cache)."""
    return [
        "--data-dir", str(data_dir), "--precision", "fp32", "--threads", "2",
        "--embedding-model", str(models["embedding"]),
        "--reranker-model", str(models["reranker"]),
        "--classifier-model", str(models["classifier"]),
    ]  # fmt: skip


def copy_cache(
    source: Path, dest: Path, roles: tuple[str, ...] = ("embedding", "reranker", "classifier")
) -> Path:
    """Copy the converted cache of ``roles`` into ``dest`` (a server may then damage it)."""
    for role in roles:
        shutil.copytree(source / "models" / role, dest / "models" / role)
    return dest


@dataclass
class LiveServer:
    """One server process; ``prefix`` wraps the command (e.g. ``unshare`` for a private mount)."""

    args: list[str]
    log_path: Path
    token: str = TOKEN
    port: int = field(default_factory=free_port)
    prefix: list[str] = field(default_factory=list)
    hub: bool = False  # True: the server may reach a (loopback) hub given by --hub-endpoint
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id (after ``exec``, also when a prefix ran first)."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> LiveServer:
        """Spawn the server; its output goes to ``log_path``."""
        command = [
            *self.prefix, sys.executable, "-m", "homeiq_addon", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), *self.args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(self.token, hub=self.hub),
                cwd=ROOT,
            )
        return self

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 30 s; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process is not None and self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

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
        """One JSON request (``token=""`` means this server's token, None means no header)."""
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
            assert self.alive(), f"the server exited early:\n{self.log()[-3000:]}"
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, body, _ = self.request("GET", "/health", token=None)
                if status == 200:
                    return dict(body)
            assert time.monotonic() < deadline, f"no /health after {within_s} s:\n{self.log()[-3000:]}"
            time.sleep(0.1)

    def wait_states(
        self, roles: list[str], states: set[str], within_s: float = 300
    ) -> dict[str, dict[str, Any]]:
        """Wait until each of ``roles`` is in one of ``states``; the /v1/models per-role report."""
        deadline = time.monotonic() + within_s
        while True:
            assert self.alive(), f"the server exited:\n{self.log()[-3000:]}"
            status, report, _ = self.request("GET", "/v1/models")
            assert status == 200, report
            models: dict[str, dict[str, Any]] = report["models"]
            if all(models[r]["state"] in states for r in roles):
                return models
            assert time.monotonic() < deadline, f"roles {roles} not in {states}: {models}"
            time.sleep(0.1)

    def load(self, roles: list[str], within_s: float = 300) -> dict[str, dict[str, Any]]:
        """POST /v1/models/load and wait until the roles are ready or failed."""
        status, body, _ = self.request("POST", "/v1/models/load", {"roles": roles})
        assert status == 202, body
        return self.wait_states(roles, {"ready", "error"}, within_s)
