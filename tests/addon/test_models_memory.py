"""Model files the compiled models no longer read leave the process's memory after warm-up."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from homeiq_addon.models import runtime
from homeiq_addon.models.cache import OV_CACHE
from homeiq_addon.models.embedder import OVEmbedder
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role
from homeiq_addon.models.word_table import WordTable
from tests.tiny_models import tiny_settings

PAGE = os.sysconf("SC_PAGE_SIZE")


def mapped_rss(root: Path) -> int:
    """Resident bytes of this process's mappings of files under ``root`` (from /proc/self/smaps)."""
    prefix = f"{os.path.realpath(root)}{os.sep}"
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's header line
            inside = len(fields) == 6 and fields[5].startswith(prefix)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


def skip_on_memory_fs(path: Path) -> None:
    """Skip where file pages cannot be paged out: tmpfs/ramfs would need swap."""
    fs = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True, check=False)
    if fs.stdout.strip() in {"tmpfs", "ramfs"}:
        pytest.skip(f"{path} is on {fs.stdout.strip()}: its pages cannot be paged out without swap")


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """A folder whose file pages can be paged out."""
    skip_on_memory_fs(tmp_path)
    return tmp_path


@pytest.fixture
def mapped(disk_dir: Path) -> Iterator[tuple[np.memmap, np.ndarray]]:
    """A 16 MB file mapped read-only with every page resident, and a copy of its content."""
    data = np.random.default_rng(3).standard_normal(4_000_000).astype(np.float32)
    data.tofile(disk_dir / "weights.bin")
    view = np.memmap(disk_dir / "weights.bin", dtype=np.float32, mode="r")
    assert float(view.sum()) == pytest.approx(float(data.sum()), rel=1e-3)  # touches every page
    yield view, data
    del view


def test_release_drops_resident_pages_and_the_data_reads_back(
    disk_dir: Path,
    mapped: tuple[np.memmap, np.ndarray],
) -> None:
    view, data = mapped
    assert mapped_rss(disk_dir) >= 15_000_000
    released = runtime.release_file_pages([disk_dir])
    assert released >= data.nbytes
    assert mapped_rss(disk_dir) < 64 * PAGE
    np.testing.assert_array_equal(view, data)  # read back from the file, unchanged
    assert mapped_rss(disk_dir) >= 15_000_000


def test_release_leaves_other_and_writable_mappings_alone(
    disk_dir: Path,
    mapped: tuple[np.memmap, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    view, data = mapped
    writable = np.memmap(disk_dir / "scratch.bin", dtype=np.float32, mode="w+", shape=(1_000_000,))
    writable[:] = 7.0  # dirty pages that must never be dropped
    other = tmp_path_factory.mktemp("elsewhere")
    np.arange(1_000_000, dtype=np.float32).tofile(other / "other.bin")
    elsewhere = np.memmap(other / "other.bin", dtype=np.float32, mode="r")
    assert float(elsewhere.sum()) > 0
    before = mapped_rss(other)

    released = runtime.release_file_pages([disk_dir])

    assert released == pytest.approx(data.nbytes, abs=2 * PAGE)  # only the read-only weights file
    assert mapped_rss(other) == before
    assert float(writable.min()) == 7.0
    del writable, elsewhere, view


def test_release_without_proc_or_mappings_is_a_no_op(tmp_path: Path) -> None:
    assert runtime.release_file_pages([tmp_path]) == 0
    assert runtime.release_file_pages([tmp_path], maps=tmp_path / "missing") == 0
    assert runtime.resident_bytes() > 0
    assert runtime.resident_bytes(tmp_path / "missing") == 0


def test_warm_up_releases_the_model_files_and_inference_is_unchanged(
    data_dir: Path, tiny_models: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    skip_on_memory_fs(data_dir)
    caplog.set_level(logging.INFO, logger="homeiq_addon")
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models))
    try:
        registry.start_loading(list(Role))
        registry.wait(timeout=120)
        registry.executor.submit(lambda: None).result()  # the warm-ups queued on the inference thread
        models = data_dir / "models"
        assert mapped_rss(models) < 64 * PAGE
        texts = ["Bedroom light turns on around 07:00 on weekdays", "Heating runs while a window is open"]
        first = registry.get_embedder().embed(texts)
        scores = registry.get_reranker().score("save energy", texts)
        labels = registry.get_classifier().classify(texts)
        assert runtime.release_file_pages([models]) > 0
        np.testing.assert_array_equal(registry.get_embedder().embed(texts), first)
        np.testing.assert_array_equal(registry.get_reranker().score("save energy", texts), scores)
        assert registry.get_classifier().classify(texts) == labels
    finally:
        registry.close()
    warmed = [r.getMessage() for r in caplog.records if "warmed up" in r.getMessage()]
    assert len(warmed) == 3
    assert all("add-on memory" in m and "MB" in m for m in warmed)


FREED_HEAP = """
import ctypes, sys
from homeiq_addon.models import runtime
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(64 * 1024) for _ in range(1000)]  # under glibc's mmap threshold: heap
for b in blocks:
    ctypes.memset(b, 1, 64 * 1024)
for b in blocks[:-1]:  # the last one keeps the top of the heap in use: glibc trims nothing itself
    libc.free(b)
before = runtime.resident_bytes()
assert runtime.release_free_heap()
print(before - runtime.resident_bytes())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_heap_returns_freed_heap_pages() -> None:
    """64 MB freed below a block still in use stays resident until the heap is trimmed."""
    env = {**os.environ, "PYTHONPATH": str(Path(runtime.__file__).parents[2])}
    command = [sys.executable, "-c", FREED_HEAP]
    run = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    assert int(run.stdout) > 48 * 2**20


@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_word_table_rows_are_read_not_mapped(disk_dir: Path, dtype: type) -> None:
    """Mapped, each row looked up brought whole page-cache folios into the process (102 MB for
    137 tokens of an FP32 XLM-R table); read, the file is never part of the process's memory."""
    rng = np.random.default_rng(5)
    table = (rng.standard_normal((20_000, 96)) * 40).astype(dtype)
    np.save(disk_dir / "words.npy", table)
    info = {"embeddings": "words.npy"}
    if dtype is np.int8:
        np.save(disk_dir / "scale.npy", rng.random((20_000, 1)).astype(np.float32))
        np.save(disk_dir / "zero.npy", rng.integers(-3, 3, (20_000, 1)).astype(np.float32))
        info |= {"embeddings_scale": "scale.npy", "embeddings_zero_point": "zero.npy"}
    words = WordTable(disk_dir, info)
    ids = rng.integers(0, 20_000, (4, 50))
    ids[0, :3] = [0, 19_999, 0]  # both ends, and a token twice
    expected = table[ids].astype(np.float32)
    if dtype is np.int8:
        expected = (expected - np.load(disk_dir / "zero.npy")[ids]) * np.load(disk_dir / "scale.npy")[ids]
    np.testing.assert_array_equal(words.lookup(ids), expected)
    assert mapped_rss(disk_dir) == 0
    with pytest.raises(IndexError):
        words.lookup(np.array([[20_000]]))


def test_a_call_that_ran_a_new_shape_gives_the_free_heap_and_the_file_pages_back(
    fp32_registry: ModelRegistry, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenVINO frees what it used to build a new shape's kernels, which glibc keeps resident, and
    reads model files again for it. A call that ran a shape its model had not run before trims
    the heap and releases the pages of the model's own files (its folder and the compiled-model
    cache) once; a shape seen before does not, and the answers are the same either way."""
    fp32_registry.executor.submit(lambda: None).result()  # the warm-ups queued on the inference thread
    trims: list[bool] = []
    released: list[list[Path]] = []
    real, real_release = runtime.release_free_heap, runtime.release_file_pages

    def counted() -> bool:
        trims.append(real())
        return trims[-1]

    def counted_release(roots: Iterable[Path]) -> int:
        released.append(list(roots))
        return real_release(released[-1])

    monkeypatch.setattr(runtime, "release_free_heap", counted)
    monkeypatch.setattr(runtime, "release_file_pages", counted_release)
    texts = [f"Light {i} turns on around {7 + i % 5:02d}:00 on weekdays, nobody home" for i in range(20)]
    embedder, reranker, classifier = (
        fp32_registry.get_embedder(),
        fp32_registry.get_reranker(),
        fp32_registry.get_classifier(),
    )
    calls: dict[str, Callable[[], object]] = {
        "embed": lambda: embedder.embed(texts),
        "rerank": lambda: reranker.score("save energy", texts),
        "classify": lambda: classifier.classify(texts[:5]),
    }
    models = data_dir / "models"
    for name, call in calls.items():
        trims.clear()
        released.clear()
        first = call()
        assert len(trims) == 1, name  # batches of several rows: none ran in the one-text warm-up
        (roots,) = released
        assert roots[-1] == models / OV_CACHE, name  # the compiled-model cache's blobs
        assert roots[0].parent.parent.parent == models and (roots[0] / "config.json").exists(), name
        again = call()
        assert trims == [True] and len(released) == 1, name  # the same shapes: no second trim
        if isinstance(first, np.ndarray):
            np.testing.assert_array_equal(again, first)
        else:
            assert again == first
    assert isinstance(embedder, OVEmbedder)
    trims.clear()
    embedder.warm([(2, 8), (2, 8), (4, 8)])  # the benchmark's bound runs shapes one at a time
    assert trims == [True, True]


def test_compiled_models_keep_a_bounded_cache_of_per_shape_executors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shape a model runs keeps its executors and their buffers: the CPU plugin is told to
    keep RUNTIME_CACHE_CAPACITY of them, not its default 5,000 (which it accepts: the compile is real)."""
    import openvino as ov
    from openvino import opset13 as ops

    real = runtime.core()
    configs: list[dict[str, object]] = []

    class Recording:
        def compile_model(self, model: object, device: str, config: dict[str, object]) -> object:
            configs.append(dict(config))
            return real.compile_model(model, device, config)

    monkeypatch.setattr(runtime, "core", Recording)
    x = ops.parameter([-1, -1], np.float32, name="x")
    graph = ov.Model([ops.relu(x)], [x])
    compiled = runtime.compile_model(graph, device="CPU", threads=1, cache_dir=None)
    request = compiled.create_infer_request()
    for rows in range(1, 8):  # the capped model runs shape after shape
        assert request.infer({"x": -np.ones((rows, rows + 1), np.float32)})[0].max() == 0
    assert configs[0]["CPU_RUNTIME_CACHE_CAPACITY"] == runtime.RUNTIME_CACHE_CAPACITY == 500


def test_a_model_gives_back_its_files_pages_before_its_first_run(
    data_dir: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiling reads the model files; the first run then grows the model's own buffers. With
    the files' pages still resident, the reranker's FP32 model peaked at 953 MB in its first run
    instead of 732 (AVX-VNNI): the registry gives them back as soon as a model is compiled (a
    probe's candidate or a served model), and the first run reads back what it needs."""
    skip_on_memory_fs(data_dir)
    registry = ModelRegistry(tiny_settings(data_dir, tiny_models))
    texts = ["Bedroom light turns on around 07:00 on weekdays", "Heating runs while a window is open"]
    try:
        registry.start_loading([Role.RERANKER])
        registry.wait(timeout=120)
        expected = registry.get_reranker().score("save energy", texts)
        entry = registry._entries[Role.RERANKER]
    finally:
        registry.close()  # and its model: a page two mappings share is not paged out
    gc.collect()
    models = data_dir / "models"
    released: list[int] = []
    real_release = runtime.release_file_pages

    def counted(roots: Any, *args: Any, **kwargs: Any) -> int:
        released.append(mapped_rss(models))
        return real_release(roots, *args, **kwargs)

    monkeypatch.setattr(runtime, "release_file_pages", counted)
    model = registry._instantiate(Role.RERANKER, entry)
    assert released and released[-1] > 16 * PAGE, released  # compiling read the files ...
    assert mapped_rss(models) < released[-1] / 8, released  # ... and went before the first run
    np.testing.assert_array_equal(model.score("save energy", texts), expected)
