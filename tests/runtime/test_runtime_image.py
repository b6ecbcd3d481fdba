"""The add-on as its default image runs it: the server in ``.venv-runtime``, a venv built from the
image's requirements and lock only (``scripts/setup.sh runtime``), with no torch and no nncf
(static INT8, weight-only INT8 and FP16 variants are made with OpenVINO alone).

The models come from a loopback hub laid out like the real one: the embedder as
sentence-transformers publishes it (``openvino/openvino_model.xml`` + the static INT8
``openvino_model_qint8_quantized.xml`` + tokenizer, beside a checkpoint and ONNX files it must not
fetch), the reranker and the classifier as ONNX graphs. The test side runs in ``.venv-addon``,
which builds those tiny repositories and the PyTorch references with torch.

``scripts/test.sh`` runs this file in its own step and prints the environment's size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homeiq_addon.launch import ROOT, AddonProcess
from homeiq_addon.models.labels import category_prompt
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.precision import CHOICES_FILE
from homeiq_addon.models.types import CATEGORIES
from tests.addon.test_models_inference import reference_embeddings, reference_label_probs, reference_rerank
from tests.fake_hub import FakeHub, serving
from tests.hub_repos import default_layout_repos
from tests.tiny_models import build_all

RUNTIME = Path(os.environ.get("HOMEIQ_RUNTIME_VENV", ROOT / ".venv-runtime"))
PYTHON = RUNTIME / "bin" / "python"
SIZE_LIMIT_MB = 500
TOKEN = "runtime-image-token-7c1e2d3f4a5b6c7d8e9f"
SHA1, SHA2 = "1" * 40, "2" * 40
REPOS = {
    "embedding": "sentence-transformers/tiny-minilm",
    "reranker": "BAAI/tiny-reranker",
    "classifier": "Xenova/tiny-flan-t5",
}
CHECKPOINT_ONLY = "someone/checkpoint-only"
ROLES = list(REPOS)
TEXTS = [*pattern_texts(10, seed=31), "Front door locks at 22:30"]
QUERY = "keep the house safe at night"


@pytest.fixture(scope="module", autouse=True)
def runtime_venv() -> Path:
    if not PYTHON.exists():
        pytest.fail(f"{RUNTIME} does not exist: run scripts/setup.sh runtime")
    return RUNTIME


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def repos(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    built = default_layout_repos(tiny, tmp_path_factory.mktemp("hub"), REPOS)
    return built | {CHECKPOINT_ONLY: tiny["embedding"]}


@pytest.fixture
def hub(repos: dict[str, Path]) -> Iterator[FakeHub]:
    with serving(repos, SHA1) as server:
        yield server


def server(hub: FakeHub, data: Path, log: Path, *flags: str) -> AddonProcess:
    """The server under the runtime venv's interpreter, its hub the loopback fake."""
    args = ["--data-dir", str(data), "--threads", "2", "--hub-endpoint", hub.url, *flags]
    return AddonProcess(args, log, token=TOKEN, python=str(PYTHON), hub=True)


def pinned_full_profile() -> list[str]:
    flags = ["--profile", "full", "--precision", "auto"]
    for role, repo in REPOS.items():
        flags += [f"--{role}-model", repo, f"--{role}-revision", SHA1]
    return flags


def test_the_runtime_environment_has_no_torch_and_fits_the_budget() -> None:
    for module in ("torch", "nncf", "transformers", "optimum"):
        found = subprocess.run([str(PYTHON), "-c", f"import {module}"], capture_output=True, check=False)
        assert found.returncode != 0, f"{module} is importable in {RUNTIME}"
    size = sum(p.stat().st_size for p in RUNTIME.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"runtime environment: {size / 1e6:.0f} MB in {RUNTIME} (limit {SIZE_LIMIT_MB} MB)")
    assert size <= SIZE_LIMIT_MB * 1e6


def test_the_runtime_environment_is_exactly_the_lock() -> None:
    """What the image installs (requirements.txt with the lock as constraints) is the lock, whole:
    a dependency that changed upstream, or a package missing from the lock, shows up here."""
    frozen = subprocess.run(
        [str(PYTHON), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    lock = (ROOT / "addon/requirements-runtime.lock").read_text(encoding="utf-8").splitlines()
    assert sorted(frozen) == sorted(line for line in lock if line and not line.startswith("#"))


def _vectors(body: dict[str, Any]) -> np.ndarray:
    return np.asarray(body["embeddings"], dtype=np.float64)


def test_the_default_layouts_are_served_end_to_end_and_pinned_commits_never_download(
    hub: FakeHub, repos: dict[str, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with server(hub, data, tmp_path / "first.log", *pinned_full_profile()) as first:
        first.wait_healthy()
        models = first.wait_ready(ROLES)
        embedding, reranker, classifier = (models[role] for role in ROLES)
        assert all(models[role]["revision"] == SHA1 for role in ROLES)
        # The published static INT8 IR is a candidate, and so are the static INT8 and weight-only
        # INT8 this image makes itself from the FP32 entries (static_int8.py, weight_int8.py).
        for report in (embedding, reranker, classifier):
            assert "could not be used" not in report["precision_reason"], report
        assert embedding["precision"] in ("int8", "int8-weights", "fp32", "bf16"), embedding
        assert reranker["precision"] in ("int8", "int8-weights", "fp32", "bf16"), reranker
        assert classifier["precision"] in ("int8", "int8-weights", "fp32", "bf16"), classifier
        choices = json.loads((data / "models" / CHOICES_FILE).read_text(encoding="utf-8"))
        for role in ("reranker", "classifier"):  # the classifier's static INT8 from its ONNX graphs too
            (measured,) = [c["measurements"] for c in choices.values() if c["role"] == role]
            timed = {m["name"] for m in measured if m.get("seconds") and not m.get("error")}
            assert {"int8", "int8-weights", "fp32"} <= timed, measured

        status, body, _ = first.request("POST", "/v1/embed", {"texts": TEXTS})
        assert status == 200, body
        cosine = (_vectors(body) * reference_embeddings(tiny["embedding"], TEXTS)).sum(axis=1)
        assert cosine.min() >= 0.98  # the accuracy gate precision auto applies

        status, body, _ = first.request("POST", "/v1/rerank", {"query": QUERY, "documents": TEXTS})
        assert status == 200, body
        scores = np.zeros(len(TEXTS))
        for result in body["results"]:
            scores[result["index"]] = result["score"]
        np.testing.assert_allclose(scores, reference_rerank(tiny["reranker"], QUERY, TEXTS), atol=2e-2)

        status, body, _ = first.request("POST", "/v1/classify", {"texts": TEXTS[:3]})
        assert status == 200, body
        got = np.array([body["results"][0]["scores"][c] for c in CATEGORIES])
        expected = reference_label_probs(tiny["classifier"], category_prompt(TEXTS[0], None), CATEGORIES)
        np.testing.assert_allclose(got, expected, atol=2e-2)
    log = first.log()
    assert "Traceback" not in log, log[-3000:]
    # The embedder's checkpoint is never fetched; the one ONNX download is the reranker's graph.
    assert (hub.requests["GET model.safetensors"], hub.requests["GET onnx/model.onnx"]) == (0, 1)

    # Upstream moves on; with the commits pinned, a restart asks the hub for nothing.
    changed = tmp_path / "upstream"
    for repo_id in REPOS.values():
        folder = changed / repo_id.replace("/", "--")
        shutil.copytree(repos[repo_id], folder)
        (folder / "README.md").write_text("a new upstream commit\n")
        hub.add_folder(repo_id, folder, SHA2)
    before = sum(hub.requests.values())
    with server(hub, data, tmp_path / "second.log", *pinned_full_profile()) as second:
        second.wait_healthy()
        models = second.wait_ready(ROLES)
        assert all(models[role]["revision"] == SHA1 for role in ROLES)
    assert sum(hub.requests.values()) == before


def test_a_checkpoint_without_openvino_or_onnx_files_fails_clearly(hub: FakeHub, tmp_path: Path) -> None:
    flags = ["--profile", "lite", "--precision", "auto"]
    flags += ["--embedding-model", CHECKPOINT_ONLY, "--embedding-revision", SHA1]
    with server(hub, tmp_path / "data", tmp_path / "server.log", *flags) as addon:
        addon.wait_healthy()
        report = addon.load(["embedding"])["embedding"]
        assert (report["state"], report["error_code"]) == ("error", "converter_missing"), report
        assert "WITH_CONVERTER=true" in report["error"] and "OpenVINO or ONNX" in report["error"]
        status, body, _ = addon.request("POST", "/v1/embed", {"texts": ["hello"]})
        assert status == 503, body
        assert body["error"]["code"] == "model_failed" and "converter" in body["error"]["message"]
    assert "Embedding model checkpoint-only failed: " in addon.log()
    assert hub.downloads() == 0
