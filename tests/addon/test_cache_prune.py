"""Models of an earlier configuration leave the cache once the configured ones are all ready.

A user who switches models (or from ``full`` to ``lite``) gets the old ones' disk space back
without doing anything; a configuration that does not work yet (invalid options, a model that
fails to load, a role still loading) never costs the models it would replace.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role, RoleState
from tests.addon.live_server import LiveServer, copy_cache, tiny_model_args
from tests.tiny_models import tiny_settings

OLD_MODEL = "sentence-transformers--an-earlier-choice"  # a hub model configured before


def cache_with_an_earlier_model(source: Path, data: Path) -> Path:
    """The three tiny roles converted, plus a second embedding model nobody configures now."""
    copy_cache(source, data)
    (configured,) = (data / "models" / "embedding").iterdir()
    shutil.copytree(configured, data / "models" / "embedding" / OLD_MODEL)
    return data


def folders(data: Path) -> dict[str, int]:
    """Each cached model folder (role/slug) with the bytes it holds."""
    return {
        str(folder.relative_to(data / "models")): sum(
            f.stat().st_size for f in folder.rglob("*") if f.is_file()
        )
        for role in Role
        for folder in sorted((data / "models" / role.value).glob("*"))
    }


def test_serve_removes_models_no_longer_configured_and_keeps_serving(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    data = cache_with_an_earlier_model(fp32_data_dir, tmp_path / "data")
    before = folders(data)
    configured = next(k for k in before if k.startswith("embedding/") and OLD_MODEL not in k)
    args = [*tiny_model_args(tiny_models, data), "--profile", "lite", "--prefetch"]
    with LiveServer(args, tmp_path / "server.log") as server:
        server.wait_healthy()
        served = server.wait_states(["embedding"], {"ready"})["embedding"]
        deadline = time.monotonic() + 60
        while "freed" not in server.log():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        assert list(folders(data)) == [configured]  # the lite profile needs no reranker or classifier
        assert (data / "models" / configured / f"{served['revision']}-fp32").is_dir()
        status, body, _ = server.request("POST", "/v1/embed", {"texts": ["the model in use still serves"]})
        assert status == 200 and len(body["embeddings"]) == 1, body
    line = next(line for line in server.log().splitlines() if "no longer configured" in line)
    gone = [k for k in before if k != configured]
    assert f"Removed {len(gone)} cached model(s)" in line
    for folder in gone:
        assert folder in line
    match = re.search(r"([\d.]+) MB freed", line)
    assert match, line
    assert float(match.group(1)) >= round(sum(before[k] for k in gone) / 1e6, 1) > 0


@pytest.mark.parametrize(
    "options",
    [{"profile": "lite", "threads": 999}, {"profile": "lite", "embedding_model": "/no/such/model"}],
    ids=["invalid-option", "missing-model-directory"],
)
def test_an_invalid_configuration_removes_nothing(
    tmp_path: Path, fp32_data_dir: Path, options: dict[str, object]
) -> None:
    data = cache_with_an_earlier_model(fp32_data_dir, tmp_path / "data")
    (data / "options.json").write_text(json.dumps({**options, "prefetch": True}))
    before = folders(data)
    server = LiveServer(["--data-dir", str(data)], tmp_path / "server.log").start()
    assert server.wait_exit() == 2, server.log()
    assert folders(data) == before


def test_a_model_that_fails_to_load_removes_nothing(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    data = cache_with_an_earlier_model(fp32_data_dir, tmp_path / "data")
    broken = tmp_path / "broken-classifier"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # a model folder in name only
    before = folders(data)
    registry = ModelRegistry(tiny_settings(data, tiny_models, classifier_model=str(broken)))
    try:
        registry.prune_when_ready()
        registry.start_loading(list(Role))
        registry.wait(timeout=300)
        states = {role: status.state for role, status in registry.status().items()}
        assert states == {
            Role.EMBEDDING: RoleState.READY,
            Role.RERANKER: RoleState.READY,
            Role.CLASSIFIER: RoleState.ERROR,
        }
        assert folders(data) == before
    finally:
        registry.close()


@pytest.mark.parametrize("asked", [True, False], ids=["serve-asks", "fetch-or-shared-cache"])
def test_the_cache_is_pruned_only_when_asked_and_only_once_the_models_are_loaded(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path], asked: bool
) -> None:
    """Without prefetch the models load on first use, and pruning waits for that; other users of
    a data dir (``fetch``, tests sharing a cache) never ask for it."""
    data = cache_with_an_earlier_model(fp32_data_dir, tmp_path / "data")
    before = folders(data)
    registry = ModelRegistry(tiny_settings(data, tiny_models, profile="lite"))
    try:
        if asked:
            registry.prune_when_ready()
        assert folders(data) == before
        registry.start_loading([Role.EMBEDDING])
        registry.wait(timeout=300)
        assert registry.status()[Role.EMBEDDING].state is RoleState.READY
    finally:
        registry.close()
    if asked:
        (kept,) = folders(data)
        assert kept.startswith("embedding/") and OLD_MODEL not in kept
    else:
        assert folders(data) == before
