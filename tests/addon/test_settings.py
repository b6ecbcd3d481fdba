"""Options come from options.json, HOMEIQ_* variables and CLI flags; the CLI wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from homeiq_addon.models.types import Role
from homeiq_addon.settings import DEFAULT_MODELS, Settings, SettingsError, load_settings


def _write_options(path: Path, options: dict[str, object]) -> Path:
    path.write_text(json.dumps(options))
    return path


def test_defaults_without_any_source(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    assert settings.profile == "full"
    assert settings.port == 8765
    assert settings.device == "CPU"
    assert settings.embedding_model == DEFAULT_MODELS[Role.EMBEDDING]
    assert settings.roles() == [Role.EMBEDDING, Role.RERANKER, Role.CLASSIFIER]
    assert settings.token_path == tmp_path / "token"


def test_options_json_in_data_dir_is_read(tmp_path: Path) -> None:
    _write_options(tmp_path / "options.json", {"profile": "lite", "max_texts": 10, "max_body_kb": 64})
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    assert settings.profile == "lite"
    assert settings.roles() == [Role.EMBEDDING]
    assert settings.limits.max_texts == 10
    assert settings.limits.max_body_bytes == 64 * 1024


def test_environment_overrides_options_file_and_cli_overrides_both(tmp_path: Path) -> None:
    _write_options(tmp_path / "options.json", {"profile": "lite", "port": 1000, "device": "GPU"})
    environ = {"HOMEIQ_PORT": "2000", "HOMEIQ_DEVICE": "npu", "HOMEIQ_PREFETCH": "yes"}
    settings = load_settings({"data_dir": str(tmp_path), "port": 3000}, environ=environ)
    assert settings.port == 3000  # CLI
    assert settings.device == "NPU"  # environment, normalised
    assert settings.profile == "lite"  # file
    assert settings.prefetch is True


def test_environment_alone_configures_a_plain_container(tmp_path: Path) -> None:
    environ = {
        "HOMEIQ_DATA_DIR": str(tmp_path),
        "HOMEIQ_TOKEN": "a-token-long-enough-1234",
        "HOMEIQ_THREADS": "0",
        "HOMEIQ_MAX_WAIT_MS": "2.5",
    }
    settings = load_settings({}, environ=environ)
    assert settings.data_dir == tmp_path
    assert settings.token == "a-token-long-enough-1234"
    assert settings.threads == 0  # automatic
    assert settings.batching.max_wait_ms == 2.5


def test_options_file_path_can_be_overridden(tmp_path: Path) -> None:
    options = _write_options(tmp_path / "elsewhere.json", {"log_level": "debug"})
    settings = load_settings({"data_dir": str(tmp_path)}, environ={"HOMEIQ_OPTIONS_FILE": str(options)})
    assert settings.log_level == "debug"


def test_unknown_keys_in_options_file_are_ignored_but_not_on_the_command_line(tmp_path: Path) -> None:
    _write_options(tmp_path / "options.json", {"a_future_option": 1, "profile": "lite"})
    assert load_settings({"data_dir": str(tmp_path)}, environ={}).profile == "lite"
    with pytest.raises(SettingsError, match="unknown option 'bogus'"):
        load_settings({"data_dir": str(tmp_path), "bogus": 1}, environ={})


@pytest.mark.parametrize(
    ("source", "key", "value"),
    [
        ("file", "profile", "huge"),
        ("file", "max_texts", 0),
        ("env", "port", "eighty"),
        ("env", "prefetch", "maybe"),
        ("cli", "device", "TPU"),
        ("cli", "dedupe_threshold", 2.0),
    ],
)
def test_invalid_values_name_the_option_and_the_source(
    tmp_path: Path, source: str, key: str, value: object
) -> None:
    cli: dict[str, object] = {"data_dir": str(tmp_path)}
    environ: dict[str, str] = {}
    if source == "file":
        _write_options(tmp_path / "options.json", {key: value})
    elif source == "env":
        environ["HOMEIQ_" + key.upper()] = str(value)
    else:
        cli[key] = value
    with pytest.raises(SettingsError, match=key):
        load_settings(cli, environ=environ)


def test_malformed_options_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "options.json").write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_settings({"data_dir": str(tmp_path)}, environ={})
    (tmp_path / "options.json").write_text("[1, 2]")
    with pytest.raises(SettingsError, match="JSON object"):
        load_settings({"data_dir": str(tmp_path)}, environ={})


def test_local_model_directory_becomes_absolute_and_hub_ids_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my-model").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {
            "data_dir": str(tmp_path),
            "embedding_model": "my-model",
            "reranker_model": "BAAI/bge-reranker-base",
        },
        environ={},
    )
    assert settings.embedding_model == str(tmp_path / "my-model")
    assert settings.reranker_model == "BAAI/bge-reranker-base"


def test_empty_optional_values_from_the_ui_keep_defaults(tmp_path: Path) -> None:
    _write_options(tmp_path / "options.json", {"dedupe_threshold": None, "threads": None})
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    assert settings.dedupe_threshold == Settings().dedupe_threshold
    assert settings.threads == Settings().threads == 0  # automatic


def test_token_is_not_in_the_repr(tmp_path: Path) -> None:
    settings = load_settings({"data_dir": str(tmp_path), "token": "secret-token-0123456789"}, environ={})
    assert "secret-token" not in repr(settings)
