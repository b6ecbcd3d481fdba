"""Security of the add-on: the token stays secret, model ids are checked, limits hold, and the
container asks for no privileges.

Already pinned elsewhere (not repeated here): token generation/0600/constant-time compare
(``test_api_auth.py``), a generated token absent from the serve log (``test_cli.py``),
``trust_remote_code`` and path-like hub ids refused by the store (``test_models_cache.py``),
host_network/privileged/full_access/docker_api absent and the AppArmor profile's name
(``test_packaging.py``), the integration's diagnostics redaction
(``tests/integration/test_availability.py``).
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeiq_addon.launch import ROOT, server_env
from tests.addon.live_server import TOKEN, LiveServer, copy_cache, tiny_model_args

ROLES = ["embedding", "reranker", "classifier"]


@pytest.fixture(scope="module")
def debug_server(
    tmp_path_factory: pytest.TempPathFactory, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> Iterator[LiveServer]:
    """Default limits, debug logging (the access log is on): the most the log can ever show."""
    tmp = tmp_path_factory.mktemp("security")
    data = copy_cache(fp32_data_dir, tmp / "data")
    with LiveServer(
        [*tiny_model_args(tiny_models, data), "--log-level", "debug"], tmp / "server.log"
    ) as live:
        live.wait_healthy()
        assert all(m["state"] == "ready" for m in live.load(ROLES).values())
        yield live


def test_the_token_is_in_no_log_line_and_no_answer(debug_server: LiveServer) -> None:
    server = debug_server
    answers: list[Any] = []
    for method, path, body in [
        ("GET", "/health", None),
        ("GET", "/v1/models", None),
        ("GET", "/openapi.json", None),
        ("POST", "/v1/embed", {"texts": ["Turn on the porch light at sunset"]}),
        ("POST", "/v1/suggest", {"patterns": [{"id": "a", "text": "Lock the door at 23:00"}]}),
        ("POST", "/v1/embed", {"texts": []}),  # 422
        ("POST", "/v1/models/load", {"roles": ["embedding"]}),
    ]:
        status, answer, headers = server.request(method, path, body)
        assert status < 500
        answers.append((answer, headers))
    # Wrong and partial tokens, and the right one where it does not belong (in the query string
    # the access log would show it: that is the client's leak, so here only in headers).
    for token in ["wrong", TOKEN[:-1], TOKEN + "x", f"{TOKEN} {TOKEN}"]:
        status, answer, headers = server.request("GET", "/v1/models", token=token)
        assert status == 401
        answers.append((answer, headers))
    status, answer, headers = server.request("GET", "/health", token=TOKEN)
    answers.append((answer, headers))
    log = server.log()  # the server logs to stderr, unbuffered: every line is in the file
    assert "GET /v1/models" in log, "the access log is on at debug level"
    assert TOKEN not in log
    assert TOKEN[:12] not in log  # not even a prefix
    assert TOKEN not in json.dumps(answers)


def test_health_and_models_reveal_no_secret_or_host_path(debug_server: LiveServer) -> None:
    _, health, _ = debug_server.request("GET", "/health", token=None)
    assert set(health) == {"status", "version", "api_version", "profile", "models"}
    assert set(health["models"]["embedding"]) == {"state", "id"}
    text = json.dumps(health)
    assert TOKEN not in text
    assert "token" not in text.lower()


def test_the_load_endpoint_takes_roles_only_never_model_ids(debug_server: LiveServer) -> None:
    for extra in [
        {"model": "../../etc"},
        {"embedding_model": "http://evil.example/x"},
        {"trust_remote_code": True},
    ]:
        status, body, _ = debug_server.request("POST", "/v1/models/load", {"roles": ["embedding"], **extra})
        assert status == 422, body
        assert next(iter(extra)) in body["error"]["message"]
    status, body, _ = debug_server.request("POST", "/v1/models/load", {"roles": ["../../etc/passwd"]})
    assert status == 422


@pytest.mark.parametrize(
    "model_id",
    [
        "../../etc",
        "owner/../../etc",
        "http://evil.example/owner/model",
        "https://huggingface.co/owner/model",
        "owner/model?trust_remote_code=1",
        "owner/model;rm -rf /",
        "file:///etc/passwd",
    ],
)
def test_serve_refuses_a_model_id_that_is_a_path_trick_or_url(tmp_path: Path, model_id: str) -> None:
    flags = ["--data-dir", str(tmp_path), "--profile", "lite", "--embedding-model", model_id]
    server = LiveServer(flags, tmp_path / "server.log").start()
    assert server.wait_exit() == 2, server.log()
    output = server.log()  # stderr: nothing else is written before the refusal
    assert output.startswith("homeiq: ") and "Traceback" not in output, output
    assert not (tmp_path / "models" / "embedding").exists()


def test_a_model_id_from_options_json_is_checked_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "options.json").write_text(json.dumps({"profile": "lite", "embedding_model": "../../etc"}))
    result = subprocess.run(
        [sys.executable, "-m", "homeiq_addon", "info", "--data-dir", str(tmp_path)],
        capture_output=True, encoding="utf-8", timeout=120, env=server_env(TOKEN), cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "../../etc" in result.stderr and "Traceback" not in result.stderr


def test_the_body_limit_holds_for_chunked_bodies_without_a_length(debug_server: LiveServer) -> None:
    """1 MiB by default, also when the client streams and never says how much is coming."""

    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(40):  # 2.5 MiB in 64 KiB pieces
            yield b"z" * 65536
        yield b'"]}'

    conn = debug_server.connection()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request("POST", "/v1/embed", body=chunks(), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        body = json.loads(response.read())
    except (ConnectionError, http.client.HTTPException):
        body = None  # the server may also cut the connection once the limit is passed
    finally:
        conn.close()
    if body is not None:
        assert response.status == 413, body
        assert body["error"]["code"] == "payload_too_large"
    assert debug_server.request("GET", "/health", token=None)[0] == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": ["a"] * 257}, "texts"),
        ({"texts": ["x" * 2001]}, "texts[0]"),
        ({"texts": ["x" * 10_000]}, "texts[0]"),
    ],
)
def test_default_request_limits_hold(debug_server: LiveServer, body: dict[str, Any], field: str) -> None:
    status, answer, _ = debug_server.request("POST", "/v1/embed", body)
    assert status == 422, answer
    assert answer["error"]["message"].startswith(field)


def test_unicode_and_control_characters_in_texts_are_served(debug_server: LiveServer) -> None:
    texts = [
        "nul\x00byte",
        "bell\x07 and esc\x1b[31m",
        "rtl \u202e override",
        "emoji 💡🔒",
        "e\u0301",
        "\ufeffbom",
    ]
    status, body, _ = debug_server.request("POST", "/v1/classify", {"texts": texts})
    assert status == 200 and len(body["results"]) == len(texts)
    status, body, _ = debug_server.request("POST", "/v1/embed", {"texts": ["a\ud800b"]})  # lone surrogate
    assert status == 422 and "surrogate" in body["error"]["message"], body


# ---- the container ------------------------------------------------------------------------------

PRIVILEGED_KEYS = {
    "host_network", "host_pid", "host_ipc", "host_uts", "host_dbus", "privileged", "full_access",
    "docker_api", "hassio_api", "hassio_role", "homeassistant_api", "auth_api", "kernel_modules",
    "devicetree", "uart", "usb", "gpio", "realtime", "udev", "devices",
}  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config.yaml").read_text())
    return data


def test_the_add_on_asks_for_no_privileges_or_host_access(config: dict[str, Any]) -> None:
    assert not PRIVILEGED_KEYS & set(config), PRIVILEGED_KEYS & set(config)
    assert config.get("apparmor", True) is not False  # the shipped profile is not switched off
    assert config.get("map", []) == []  # no host folders (config, ssl, share, media) mounted
    assert config.get("ingress", False) is False
    assert list(config["ports"]) == ["8765/tcp"]


def test_the_apparmor_profile_grants_no_dangerous_capability() -> None:
    profile = (ROOT / "apparmor.txt").read_text()
    assert re.search(r"^profile homeiq flags=", profile, re.M)
    rules = [line.split("#", 1)[0].strip() for line in profile.splitlines()]
    rules = [rule for rule in rules if rule]
    for forbidden in (
        "capability",
        "mount",
        "ptrace",
        "umount",
        "pivot_root",
        "change_profile",
        "unconfined",
    ):
        assert not [r for r in rules if r.startswith(forbidden)], forbidden
