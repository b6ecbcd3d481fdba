"""What the converter really produces: static INT8 encoders (flan-t5's decoder weight-only), the
XLM-R table outside the graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from homeiq_addon.models import convert
from homeiq_addon.models.pattern_texts import pattern_texts
from homeiq_addon.models.registry import ModelRegistry
from homeiq_addon.models.types import Role, RoleState
from tests.tiny_models import tiny_settings


def op_types(xml: Path) -> Counter[str]:
    return Counter(op.get_type_name() for op in ov.Core().read_model(xml).get_ops())


def test_reranker_graph_takes_embeddings_not_token_ids(
    fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    """The word-embedding table must stay outside the compiled graph (memory trap)."""
    (entry,) = (fp32_data_dir / "models" / "reranker").glob("*/*-fp32")
    model = ov.Core().read_model(entry / "openvino_model.xml")
    assert {p.get_any_name() for p in model.inputs} == {"inputs_embeds", "attention_mask"}
    vocab = json.loads((tiny_models["reranker"] / "config.json").read_text())["vocab_size"]
    table = np.load(entry / "word_embeddings.npy", mmap_mode="r")
    assert table.shape[0] == vocab
    big_constants = [
        op
        for op in model.get_ops()
        if op.get_type_name() == "Constant"
        and op.get_output_partial_shape(0).rank.get_length() == 2
        and op.get_output_partial_shape(0)[0].get_length() == vocab
    ]
    assert big_constants == []


@pytest.mark.slow
def test_int8_conversion_quantizes_activations_and_stays_close_to_fp32(
    tmp_path: Path, tiny_models: dict[str, Path], fp32_registry: ModelRegistry
) -> None:
    """Static INT8 (FakeQuantize on activations) for the encoders, flan-t5's included; INT8
    weights for its decoder, whose one step is memory-bound."""
    registry = ModelRegistry(tiny_settings(tmp_path, tiny_models, precision="int8"))
    registry.start_loading(list(Role))
    registry.wait(timeout=600)
    status = registry.status()
    assert all(s.state is RoleState.READY for s in status.values()), status
    models = tmp_path / "models"
    (emb,) = (models / "embedding").glob("*/*-int8")
    (rr,) = (models / "reranker").glob("*/*-int8")
    (cls,) = (models / "classifier").glob("*/*-int8")
    for encoder in (
        emb / "openvino_model.xml",
        rr / "openvino_model.xml",
        cls / "openvino_encoder_model.xml",
    ):
        graph = ov.Core().read_model(encoder)  # every matrix product takes quantized activations
        matmuls = [op for op in graph.get_ops() if op.get_type_name() == "MatMul"]
        assert matmuls
        assert {op.input_value(0).get_node().get_type_name() for op in matmuls} == {"FakeQuantize"}
    ops = op_types(cls / "openvino_decoder_model.xml")  # weight-only: u8 weights decompressed
    assert ops["FakeQuantize"] == 0 and ops["Convert"] > 0
    assert status[Role.CLASSIFIER].precision == "int8"

    texts = pattern_texts(64, seed=4)
    cos = (registry.get_embedder().embed(texts) * fp32_registry.get_embedder().embed(texts)).sum(axis=1)
    assert cos.mean() > 0.98
    q8 = registry.get_reranker().score("save energy", texts)
    q32 = fp32_registry.get_reranker().score("save energy", texts)
    assert np.abs(q8 - q32).max() < 0.05
    (c8,) = registry.get_classifier().classify(texts[:1])
    assert abs(sum(c8.category_scores.values()) - 1) < 1e-4
    got = registry.get_classifier().classify(texts[:16])
    ref = fp32_registry.get_classifier().classify(texts[:16])
    deltas = [
        abs(a.priority_scores[k] - b.priority_scores[k])
        for a, b in zip(got, ref, strict=True)
        for k in a.priority_scores
    ]
    assert max(deltas) < 0.02
    registry.close()


@pytest.mark.parametrize("rows", [1, 4, 8192])
def test_a_word_table_is_copied_as_the_fp16_file_numpy_writes(tmp_path: Path, rows: int) -> None:
    """Derived reranker entries keep the word table in FP16: block by block, whatever the block
    size, the same file as ``np.save`` of the whole table in FP16."""
    table = np.random.default_rng(5).standard_normal((10, 6)).astype(np.float32)
    np.save(tmp_path / "table.npy", table)
    np.save(tmp_path / "expected.npy", table.astype(np.float16))
    convert._save_fp16(tmp_path / "table.npy", tmp_path / "half.npy", rows=rows)
    assert (tmp_path / "half.npy").read_bytes() == (tmp_path / "expected.npy").read_bytes()


COPY_TABLE = """
import sys
from pathlib import Path
import numpy as np
from homeiq_addon.models import convert
def rss_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
before = rss_mb("VmRSS")
convert._save_fp16(Path(sys.argv[1]), Path(sys.argv[2]))
print(rss_mb("VmHWM") - before)
"""


def test_copying_a_word_table_never_holds_the_table(tmp_path: Path) -> None:
    """Copied through memory maps, both whole files stayed resident: converting XLM-R's 768 MB
    table took the conversion to 1,240 MB (496 MB without it)."""
    rows = np.random.default_rng(6).standard_normal((8192, 256)).astype(np.float32)
    with (tmp_path / "table.npy").open("wb") as out:  # 80 MB, written without holding it
        np.lib.format.write_array_header_1_0(
            out, {"descr": "<f4", "fortran_order": False, "shape": (10 * 8192, 256)}
        )
        for _ in range(10):
            out.write(rows.tobytes())
    grew = subprocess.run(
        [sys.executable, "-c", COPY_TABLE, str(tmp_path / "table.npy"), str(tmp_path / "half.npy")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(convert.__file__).parents[2])},
    )
    assert float(grew.stdout) < 40, grew.stdout  # a block (8 MB, 4 in FP16), not the 120 MB
    half = np.load(tmp_path / "half.npy", mmap_mode="r")
    np.testing.assert_array_equal(half[-8192:], rows.astype(np.float16))


@pytest.mark.parametrize("precision", ["int8", "int8w", "fp16"])
@pytest.mark.parametrize("role", ["embedding", "reranker", "classifier"])
def test_a_checkpoint_converts_to_fp32_only(
    tiny_models: dict[str, Path], tmp_path: Path, role: str, precision: str
) -> None:
    """Every other precision is derived from the FP32 entry: one way to make each."""
    out = tmp_path / "entry"
    with pytest.raises(ValueError, match=r"converted to FP32.*--derive"):
        convert.convert(role, tiny_models[role], out, precision)
    assert not out.exists()
