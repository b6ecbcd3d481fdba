"""Fixtures for the end-to-end tests: the lite profile's converted model, made once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from demo.harness import ADDON_PYTHON, minilm_model_dir
from homeiq_addon.launch import ROOT


@pytest.fixture(scope="session")
def _lite_addon_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An add-on data dir whose cache holds the real all-MiniLM-L6-v2, converted as the lite profile
    serves it (``fetch``: the same conversion ``serve`` runs on first use). Each stack gets a copy,
    so the INT8 quantization (~15 s) runs once, not once per stack (see `lite_model_cached`)."""
    data = tmp_path_factory.mktemp("lite-addon-data")
    subprocess.run(
        [
            str(ADDON_PYTHON),
            "-m",
            "homeiq_addon",
            "fetch",
            "--data-dir",
            str(data),
            "--profile",
            "lite",
            "--embedding-model",
            str(minilm_model_dir()),
        ],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "addon"), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        timeout=600,
    )
    assert any((data / "models" / "embedding").glob("*/*")), "fetch left no converted model"
    return data


@pytest.fixture(scope="session")
def lite_model_cached(_lite_addon_data: Path) -> Callable[[Path], None]:
    """Call it with the workdir of `demo.flow.start_stack` before starting the stack: its add-on
    then finds the lite model converted, as on any start after the first."""

    def copy_into(workdir: Path) -> None:
        shutil.copytree(_lite_addon_data, workdir / "addon-data")

    return copy_into
