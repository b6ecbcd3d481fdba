"""The model cache against a loopback fake hub: download, faults, checksums, repair, pruning.

These registries follow ``main`` (``embedding_revision="main"``), as a user who asks for the newest
commit does; pinned commits are tested in ``test_hub_layouts.py``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from homeiq_addon import models
from homeiq_addon.models import static_int8
from homeiq_addon.models.cache import CONVERTED, MANIFEST, parse_model_id, verify_entry, write_manifest
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import InvalidModelIdError, ModelLoadError, Role, RoleState
from homeiq_addon.settings import Settings
from tests.fake_hub import FakeHub

REPO = "OpenVINO/tiny-embedding-ov"
SHA1 = "1" * 40
SHA2 = "2" * 40


@pytest.fixture
def hub(ov_folder: Path) -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.add_folder(REPO, ov_folder, SHA1)
        yield server


def lite(data: Path, hub: FakeHub | None, model: str = REPO, **kw: object) -> ModelRegistry:
    return ModelRegistry(
        Settings(
            data_dir=data,
            profile="lite",
            embedding_model=model,
            threads=1,
            hub_endpoint=hub.url if hub else "http://127.0.0.1:9",
            **{"embedding_revision": "main", "precision": "fp32", **kw},  # type: ignore[arg-type]
        )
    )


def load(registry: ModelRegistry) -> RoleState:
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=120)
    return registry.status()[Role.EMBEDDING].state


def entries(data: Path) -> list[Path]:
    return sorted((data / "models" / "embedding").glob("*/*-fp32"))


def test_hub_model_is_downloaded_verified_and_used_as_is(
    hub: FakeHub, tmp_path: Path, ov_folder: Path
) -> None:
    registry = lite(tmp_path, hub)
    assert load(registry) is RoleState.READY
    status = registry.status()[Role.EMBEDDING]
    assert (status.source, status.revision, status.error) == ("hub", SHA1, None)
    (entry,) = entries(tmp_path)
    manifest = verify_entry(entry)
    assert manifest["revision"] == SHA1
    assert (entry / "openvino_model.bin").read_bytes() == (ov_folder / "openvino_model.bin").read_bytes()
    assert list((tmp_path / "models" / ".tmp").iterdir()) == []  # nothing half-written left
    vec = registry.get_embedder().embed(["Turn on Kitchen light"])
    assert vec.shape[0] == 1 and abs(float(np.linalg.norm(vec)) - 1) < 1e-4
    registry.close()


START = """
import sys
from pathlib import Path
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.settings import Settings
data, model, revision, endpoint = sys.argv[1:]
registry = ModelRegistry(Settings(data_dir=Path(data), profile="lite", embedding_model=model,
    embedding_revision=revision, precision="fp32", threads=1, hub_endpoint=endpoint))
registry.start_loading([Role.EMBEDDING])
registry.wait(timeout=120)
print(registry.status()[Role.EMBEDDING].state.value, "huggingface_hub" in sys.modules)
registry.close()
"""


def test_a_start_from_the_cache_at_a_pinned_commit_never_loads_the_hub_client(
    hub: FakeHub, tmp_path: Path
) -> None:
    """The hub client's modules hold ≈14 MB of the server's memory: a start whose models are
    cached at the commits configured (the add-on's defaults are commits) never imports it; one
    that follows a branch asks the hub, so it does."""
    registry = lite(tmp_path, hub, embedding_revision=SHA1)
    assert load(registry) is RoleState.READY  # downloaded
    registry.close()
    downloaded = hub.downloads()
    env = {**os.environ, "PYTHONPATH": str(Path(models.__file__).parents[2])}
    started = {}
    for revision in (SHA1, "main"):
        run = subprocess.run(
            [sys.executable, "-c", START, str(tmp_path), REPO, revision, hub.url],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        started[revision] = run.stdout.split()
    assert started == {SHA1: ["ready", "False"], "main": ["ready", "True"]}
    assert hub.downloads() == downloaded  # both loaded from the cache


def test_interrupted_download_is_resumed(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults[(REPO, "openvino_model.bin")] = "truncate_once"
    registry = lite(tmp_path, hub)
    assert load(registry) is RoleState.READY
    assert hub.requests["GET openvino_model.bin"] == 2  # dropped once, resumed once
    registry.close()


def test_truncated_download_is_an_error_and_retry_repairs_it(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults[(REPO, "openvino_model.bin")] = "truncate"
    registry = lite(tmp_path, hub)
    assert load(registry) is RoleState.ERROR
    assert registry.status()[Role.EMBEDDING].error
    assert entries(tmp_path) == []  # the partial download never became a cache entry
    with pytest.raises(ModelLoadError):
        registry.get_embedder()
    del hub.faults[(REPO, "openvino_model.bin")]
    assert load(registry) is RoleState.READY  # start_loading on an error retries
    registry.close()


def test_checksum_mismatch_is_an_error_and_retry_repairs_it(hub: FakeHub, tmp_path: Path) -> None:
    hub.faults[(REPO, "openvino_model.bin")] = "corrupt"
    registry = lite(tmp_path, hub)
    assert load(registry) is RoleState.ERROR
    assert "checksum" in (registry.status()[Role.EMBEDDING].error or "")
    assert entries(tmp_path) == []
    del hub.faults[(REPO, "openvino_model.bin")]
    assert load(registry) is RoleState.READY
    registry.close()


def test_missing_repository_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    registry = lite(tmp_path, hub, model="nobody/nothing")
    assert load(registry) is RoleState.ERROR
    assert registry.status()[Role.EMBEDDING].error
    registry.close()


def test_corrupt_cache_entry_is_detected_and_rebuilt(hub: FakeHub, tmp_path: Path) -> None:
    first = lite(tmp_path, hub)
    assert load(first) is RoleState.READY
    first.close()
    (entry,) = entries(tmp_path)
    weights = entry / "openvino_model.bin"
    good = weights.read_bytes()
    weights.write_bytes(good[:100] + bytes([good[100] ^ 0x55]) + good[101:])  # same size, one bit flipped
    second = lite(tmp_path, hub)
    assert load(second) is RoleState.READY
    assert hub.requests["GET openvino_model.bin"] == 2  # downloaded again
    assert weights.read_bytes() == good
    second.close()


def test_partial_entry_without_manifest_is_rebuilt(hub: FakeHub, tmp_path: Path) -> None:
    first = lite(tmp_path, hub)
    assert load(first) is RoleState.READY
    first.close()
    (entry,) = entries(tmp_path)
    (entry / MANIFEST).unlink()
    second = lite(tmp_path, hub)
    assert load(second) is RoleState.READY
    assert verify_entry(entry)["revision"] == SHA1
    second.close()


def test_offline_uses_the_cache_and_says_so_when_empty(hub: FakeHub, tmp_path: Path) -> None:
    empty = lite(tmp_path / "empty", hub, offline=True)
    assert load(empty) is RoleState.ERROR
    assert "offline" in (empty.status()[Role.EMBEDDING].error or "")
    empty.close()
    assert load(lite(tmp_path, hub)) is RoleState.READY
    before = sum(hub.requests.values())
    offline = lite(tmp_path, hub, offline=True)
    assert load(offline) is RoleState.READY
    assert sum(hub.requests.values()) == before  # not one request
    offline.close()


def test_unreachable_hub_falls_back_to_the_cached_revision(hub: FakeHub, tmp_path: Path) -> None:
    assert load(lite(tmp_path, hub)) is RoleState.READY
    registry = lite(tmp_path, None)  # endpoint with nothing listening
    assert load(registry) is RoleState.READY
    assert registry.status()[Role.EMBEDDING].revision == SHA1
    registry.close()


def test_new_revision_replaces_and_prunes_the_old_one(hub: FakeHub, tmp_path: Path) -> None:
    assert load(lite(tmp_path, hub)) is RoleState.READY
    hub.repos[REPO].sha = SHA2
    registry = lite(tmp_path, hub)
    assert load(registry) is RoleState.READY
    assert [e.name for e in entries(tmp_path)] == [f"{SHA2}-fp32"]
    registry.close()


def test_hub_model_in_transformers_format_is_converted(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    with FakeHub() as server:
        server.add_folder("sentence-transformers/tiny-minilm", tiny_models["embedding"], SHA1)
        registry = lite(tmp_path, server, model="sentence-transformers/tiny-minilm")
        seen: list[RoleState] = []
        registry.start_loading([Role.EMBEDDING])
        deadline = time.monotonic() + 300
        while registry.status()[Role.EMBEDDING].state not in (RoleState.READY, RoleState.ERROR):
            assert time.monotonic() < deadline, seen
            seen.append(registry.status()[Role.EMBEDDING].state)
            # A sleep, not registry.wait(timeout=): a timed join never times out under faketime.
            time.sleep(0.05)
        status = registry.status()[Role.EMBEDDING]
        assert status.state is RoleState.READY, status.error
        assert RoleState.CONVERTING in seen
        (entry,) = entries(tmp_path)
        info = json.loads((entry / "homeiq-model.json").read_text())
        assert info["architecture"] == "BertModel"
        assert not any(p.suffix == ".safetensors" for p in entry.iterdir())  # only the IR is kept
        registry.close()


def test_entry_from_an_older_converter_is_converted_again(
    tiny_models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = lite(tmp_path, None, model=str(tiny_models["embedding"]), offline=True)
    assert load(first) is RoleState.READY
    first.close()
    (entry,) = entries(tmp_path)
    assert verify_entry(entry)["built_by"] == CONVERTED
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["built_by"] = "convert:homeiq-ov-1"  # what an older version of the add-on wrote
    (entry / MANIFEST).write_text(json.dumps(manifest))
    caplog.set_level(logging.INFO, logger="homeiq_addon")

    second = lite(tmp_path, None, model=str(tiny_models["embedding"]), offline=True)
    assert load(second) is RoleState.READY
    second.close()
    assert verify_entry(entry)["built_by"] == CONVERTED
    assert any("converted by an older version" in r.getMessage() for r in caplog.records)
    assert any("Converted embedding model" in r.getMessage() for r in caplog.records)

    caplog.clear()
    third = lite(tmp_path, None, model=str(tiny_models["embedding"]), offline=True)
    assert load(third) is RoleState.READY  # from the cache: not converted a third time
    third.close()
    assert not any("Converted" in r.getMessage() for r in caplog.records)


def _largest_weight_code(entry: Path) -> int:
    graph = ov.Core().read_model(entry / "openvino_model.xml")
    codes = [
        np.abs(op.get_data().astype(np.int32)).max()
        for op in graph.get_ops()
        if op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.i8
    ]
    return int(max(codes))


def test_static_int8_made_for_another_kind_of_cpu_is_made_again(
    tiny_models: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Static INT8 weights take 7 bits where the CPU's INT8 kernels saturate 8-bit ones (x86
    without VNNI): an entry made for the other kind (a data folder moved, or made by a version
    before that) is made again, once."""
    model = str(tiny_models["embedding"])

    def made(data: Path) -> Path:
        registry = lite(data, None, model=model, offline=True, precision="int8")
        assert load(registry) is RoleState.READY
        registry.close()
        (entry,) = (data / "models" / "embedding").glob("*/*-int8")
        return entry

    entry = made(tmp_path / "here")
    info = json.loads((entry / "homeiq-model.json").read_text())
    assert info["weight_steps"] == _largest_weight_code(entry) == static_int8.weight_steps()

    other = static_int8.NARROW_WEIGHT_STEPS + static_int8.WEIGHT_STEPS - info["weight_steps"]
    (entry / "homeiq-model.json").write_text(json.dumps(info | {"weight_steps": other}))
    meta = json.loads((entry / MANIFEST).read_text())
    write_manifest(entry, {k: v for k, v in meta.items() if k not in ("files", "created")})
    caplog.set_level(logging.INFO, logger="homeiq_addon")
    assert made(tmp_path / "here") == entry
    assert f"holds static INT8 weights of up to {other} where this CPU's INT8 kernels take" in caplog.text
    again = json.loads((entry / "homeiq-model.json").read_text())["weight_steps"]
    assert again == _largest_weight_code(entry) == static_int8.weight_steps()
    caplog.clear()
    made(tmp_path / "here")
    assert "Converted" not in caplog.text  # once

    # oneDNN's cap makes this machine an x86 CPU without VNNI, in the derivation's process too.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = made(tmp_path / "capped")
    steps = json.loads((capped / "homeiq-model.json").read_text())["weight_steps"]
    assert steps == _largest_weight_code(capped) == static_int8.NARROW_WEIGHT_STEPS


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../etc/passwd",
        "owner/../x",
        "a/b/c",
        "http://evil/x",
        "owner/name;rm",
        ".hidden/x",
        "/no/such/dir",
    ],
)
def test_invalid_model_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidModelIdError):
        parse_model_id(bad)


def test_valid_model_ids_are_accepted(tiny_models: dict[str, Path]) -> None:
    assert parse_model_id("BAAI/bge-reranker-base").kind == "hub"
    assert parse_model_id("OpenVINO/bge-reranker-base-int8-ov").slug == "OpenVINO--bge-reranker-base-int8-ov"
    assert parse_model_id("gpt2").kind == "hub"
    local = parse_model_id(str(tiny_models["embedding"]))
    assert local.kind == "local" and "/" not in local.slug


def test_model_that_needs_remote_code_is_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "remote-code"
    shutil.copytree(tiny_models["embedding"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    registry = lite(tmp_path / "data", None, model=str(folder))
    assert load(registry) is RoleState.ERROR
    assert "trust_remote_code" in (registry.status()[Role.EMBEDDING].error or "")
    registry.close()
