"""`python -m homeiq_addon serve | fetch | info`: the entrypoint the add-on and the demo run."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from homeiq_addon.launch import AddonProcess, server_env
from tests.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return server_env(None, hub=True)  # the fetch tests reach a loopback fake hub


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homeiq_addon", *args],
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
        env=_env(),
        cwd=ROOT,
        check=False,
    )


def test_help_names_the_three_commands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("serve", "fetch", "info"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--max-texts", "0"], "max_texts"), (["--dedupe-threshold", "3"], "dedupe_threshold")],
)
def test_an_invalid_option_exits_2_and_names_it(tmp_path: Path, args: list[str], named: str) -> None:
    result = _cli("info", "--data-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert named in result.stderr


def test_info_prints_the_models_report_from_options_json(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    options = {"profile": "lite", "embedding_model": str(tiny_models["embedding"]), "max_texts": 9}
    (tmp_path / "options.json").write_text(json.dumps(options))
    result = _cli("info", "--data-dir", str(tmp_path), "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["profile"] == "lite"
    assert report["precision"] == "fp32"
    assert report["limits"]["max_texts"] == 9
    assert report["models"]["embedding"]["id"] == str(tiny_models["embedding"])


def test_fetch_converts_and_loads_the_requested_role(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    result = _cli(
        "fetch",
        "--data-dir",
        str(tmp_path),
        "--roles",
        "embedding",
        "--embedding-model",
        str(tiny_models["embedding"]),
        "--precision",
        "fp32",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "embedding: ready" in result.stdout
    assert any((tmp_path / "models").iterdir())


def test_fetch_of_a_broken_model_exits_1_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    result = _cli(
        "fetch", "--data-dir", str(tmp_path / "data"), "--profile", "lite", "--embedding-model", str(broken)
    )
    assert result.returncode == 1
    assert "embedding failed" in result.stderr


def test_a_directory_that_is_no_model_exits_2_without_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _cli(
        "info", "--data-dir", str(tmp_path / "data"), "--profile", "lite", "--embedding-model", str(empty)
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(empty) in result.stderr


def test_serve_answers_with_a_generated_token_and_stops_cleanly(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(fp32_data_dir, data_dir)
    flags = ["--data-dir", str(data_dir), "--profile", "lite", "--precision", "fp32", "--prefetch"]
    server = AddonProcess(
        [*flags, "--embedding-model", str(tiny_models["embedding"])], tmp_path / "serve.log"
    )
    with server:  # no token given: the server generates one
        health = server.wait_healthy()
        token_file = data_dir / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in json.dumps(health)
        assert server.request("POST", "/v1/embed", {"texts": ["hello"]})[0] == 401
        server.token = token
        server.wait_states(["embedding"], {"ready"}, within_s=120)
        status, body, _ = server.request("POST", "/v1/embed", {"texts": ["hello"]})
        assert status == 200
        assert len(body["embeddings"][0]) == body["dim"]
        returncode = server.stop(within_s=60)
    output = server.log()
    assert returncode == 0, output
    assert f"Listening on http://127.0.0.1:{server.port}" in output
    assert "Generated a new API token" in output
    assert token not in output
    assert "Stopped" in output


def test_fetch_downloads_a_hub_model_from_the_endpoint_in_the_environment(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    """A plain container is configured by HOMEIQ_* variables alone; the hub is a loopback fake."""
    with FakeHub() as hub:
        hub.add_folder("acme/tiny-embedder", tiny_models["embedding"], sha="a" * 40)
        env = {
            **_env(),
            "HOMEIQ_DATA_DIR": str(tmp_path),
            "HOMEIQ_PROFILE": "lite",
            "HOMEIQ_EMBEDDING_MODEL": "acme/tiny-embedder",
            "HOMEIQ_EMBEDDING_REVISION": "a" * 40,
            "HOMEIQ_PRECISION": "fp32",
            "HOMEIQ_HUB_ENDPOINT": hub.url,
        }
        result = subprocess.run(
            [sys.executable, "-m", "homeiq_addon", "fetch"],
            capture_output=True,
            encoding="utf-8",
            timeout=600,
            env=env,
            cwd=ROOT,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "embedding: ready (acme/tiny-embedder)" in result.stdout
    assert hub.requests, "nothing was downloaded from the fake hub"
