"""Turn a model folder into the OpenVINO IR the runtime serves, in a CHILD process.

Three routes, each run as ``python -m homeiq_addon.models.convert ...`` so that the serving
process never loads what they import (torch alone costs ≈215 MB and 1.5 s); the parent only
reads the files written here:

- ONNX (``model.onnx``, or ``encoder_model.onnx`` + ``decoder_model.onnx`` for the classifier)
  to an FP32 IR with OpenVINO's own ONNX frontend: needs neither torch nor nncf, so the default
  (torch-free) add-on image serves hub repositories that ship ONNX files;
- ``--derive``: a variant of an FP32 cache entry, with OpenVINO alone, in any image: static INT8
  (:mod:`.static_int8`, calibrated on pattern texts), weight-only INT8 (:mod:`.weight_int8`) or
  an FP16 copy (the same graphs with their weights stored in FP16, for BF16 inference);
- a PyTorch checkpoint (safetensors / pytorch_model.bin): traced with torch and transformers,
  only in the converter image (build argument ``WITH_CONVERTER=true``). Described below.

Each role is traced with OpenVINO's PyTorch frontend (the exporter optimum-intel itself
uses) through a small wrapper, so the graph has exactly the inputs the runtime feeds:

- embedding: (input_ids, attention_mask) -> masked-mean-pooled, L2-normalised embedding;
- reranker: (inputs_embeds, attention_mask) -> logit. XLM-R's 250k-word embedding table
  stays OUT of the graph (``word_embeddings.npy``, memory-mapped by the runtime): compiled
  inside a statically quantized graph it expands to ≈1.1 GB of FP32;
- classifier: T5 encoder (input_ids, attention_mask) -> hidden states, and a decoder
  without cache (decoder_input_ids, encoder_hidden_states, encoder_attention_mask) ->
  log-probabilities of the next token, for label scoring.

int8w (asked by ``precision: auto``): weight-only INT8 for every role, always made from the FP32
entry with OpenVINO alone (``--derive``), whatever that entry was built from, so the default
image has it too.

fp16 (asked by ``precision: auto`` for the classifier's BF16 and ARM FP16 candidates): the FP32 entry's graphs
saved with FP16 weights. Compiled for BF16 inference, flan-t5-small's graphs then hold 48 MB less
(189 instead of 237 MB on an AMX Xeon, at the same speed): from FP32 weights the CPU plugin keeps
a converted copy beside the one it packs. The embedder's and reranker's BF16 graphs held the same
either way (the embedder compiles through OpenVINO's cache; measured), so only the classifier asks.

INT8: static (weights and activations, SmoothQuant included: :mod:`.static_int8`, what nncf's
``quantize`` writes, with OpenVINO alone) with pattern-text calibration, always made from the
FP32 entry (``--derive``) unless the repository publishes it; weight-only INT8 (:mod:`.weight_int8`,
nncf's INT8_ASYM scheme written with OpenVINO alone). The classifier's static INT8 quantizes its
encoder, calibrated on the classifier's own prompts, and compresses its decoder's weights: the one
decoder step per prompt is memory-bound, and its inputs are the encoder's states. Static INT8 of
T5 once flipped 40 % of the priority answers; that was OpenVINO taking T5's attention mask for a
dequantization (``static_int8.widen_integer_converts``), not T5's activation outliers: with the
mask fixed, flan-t5-small's shape (random weights, whose many near-ties make it a harsh test)
agreed with FP32 on 96-99 % of the decisive priorities, depending on the calibration texts
(weight-only INT8: 98 %); ``precision: auto``'s gate decides per CPU.
"""

# ruff: noqa: PLC0415  (torch and transformers are imported late on purpose: this module is
# imported by tests of the serving process, which must never load them)
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .batching import bucket_length, pad_ids
from .labels import category_prompt, priority_prompt
from .loaded import (
    INFO_FILE,
    config_max_length,
    load_tokenizer,
    pad_token_id,
    read_config,
    read_info,
    token_rows,
)
from .pattern_context import context_from_text
from .pattern_texts import pattern_texts, query_texts

_LOGGER = logging.getLogger("homeiq_addon.models.convert")
FORMAT = "homeiq-ov-2"  # bump when the graphs written here change: older cache entries are rebuilt
TOKENIZER_FILES = ("tokenizer.json", "config.json")
CALIBRATION_TEXTS = 300
# The classifier's prompts are ~110 tokens (its label definitions), five times a pattern text:
# fewer texts calibrate it, each asked as the add-on asks it (both questions without a context,
# the category with one, as a suggestion run sends). On flan-t5-small's shape (random weights),
# 96 texts agreed with FP32 on 94-96 % of the decisive priorities, 150 on 96-99 % (four seeds),
# 300 on 97 %.
CLASSIFIER_CALIBRATION_TEXTS = 150
MAX_LENGTH = {"embedding": 256, "reranker": 512, "classifier": 512}
# int8: static INT8 (the classifier's decoder weight-only); int8w: weight-only INT8; fp32; fp16:
# the FP32 graphs with FP16 weights. Checkpoints and ONNX graphs are converted to FP32; every other
# precision is made from that entry (derive()), unless a repository publishes the graphs.
PRECISIONS = ("int8", "int8w", "fp32", "fp16")
ONNX_MODEL = "model.onnx"
ONNX_ENCODER = "encoder_model.onnx"
ONNX_DECODER = "decoder_model.onnx"
OV_MODEL = "openvino_model.xml"
OV_ENCODER = "openvino_encoder_model.xml"
OV_DECODER = "openvino_decoder_model.xml"


def _batches(rows: list[list[int]], pad_id: int, size: int, max_len: int) -> Iterator[tuple[Any, Any]]:
    rows = sorted(rows, key=len)
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        yield pad_ids(chunk, len(chunk), bucket_length(max(map(len, chunk)), max_len), pad_id)


def _quantize(model: Any, items: list[dict[str, Any]], mapped: tuple[Path, ...] = (), *, steps: int) -> Any:
    from .static_int8 import quantize

    quantize(model, items, mapped, steps=steps)
    return model


def _compress_weights(model: Any) -> Any:
    from .weight_int8 import compress_weights

    compress_weights(model)
    return model


def weight_only(precision: str) -> bool:
    """Whether ``precision``'s graphs have INT8 weights only (FP32 activations)."""
    return precision == "int8w"


def reduced(precision: str) -> bool:
    """Whether ``precision``'s entry is the FP32 entry's graphs with smaller weights
    (INT8 or FP16), made from that entry with OpenVINO alone whatever it was built from, never
    converted directly."""
    return precision == "fp16" or weight_only(precision)


def convert_embedding(source: Path, out: Path) -> dict[str, Any]:
    """BERT-like encoder with pooling and normalisation inside the graph."""
    import openvino as ov
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(source, attn_implementation="sdpa").eval()

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.model(
                input_ids=input_ids,
                attention_mask=_mask4d(attention_mask),
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    example = {
        "input_ids": torch.ones(2, 16, dtype=torch.long),
        "attention_mask": torch.ones(2, 16, dtype=torch.long),
    }
    with torch.no_grad():
        ov_model = ov.convert_model(Wrapper(), example_input=example)
    _name_io(ov_model, ["input_ids", "attention_mask"], ["sentence_embedding"])
    max_len = min(MAX_LENGTH["embedding"], int(model.config.max_position_embeddings))
    ov.save_model(ov_model, out / "openvino_model.xml", compress_to_fp16=False)
    return {"dim": int(model.config.hidden_size), "max_length": max_len, "pooling": "graph"}


def convert_reranker(source: Path, out: Path) -> dict[str, Any]:
    """XLM-R / BERT cross-encoder fed with ``inputs_embeds``; the word table is saved apart."""
    import openvino as ov
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(source, attn_implementation="sdpa").eval()
    table = model.get_input_embeddings().weight.detach().numpy()
    np.save(out / "word_embeddings.npy", table.astype(np.float32))

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.model(
                inputs_embeds=inputs_embeds, attention_mask=_mask4d(attention_mask)
            ).logits
            return logits

    hidden = int(model.config.hidden_size)
    example = {
        "inputs_embeds": torch.zeros(2, 16, hidden, dtype=torch.float32),
        "attention_mask": torch.ones(2, 16, dtype=torch.long),
    }
    with torch.no_grad():
        ov_model = ov.convert_model(Wrapper(), example_input=example)
    _name_io(ov_model, ["inputs_embeds", "attention_mask"], ["logits"])
    max_len = min(MAX_LENGTH["reranker"], int(model.config.max_position_embeddings) - 2)
    ov.save_model(ov_model, out / "openvino_model.xml", compress_to_fp16=False)
    return {
        "max_length": max_len,
        "embeddings": "word_embeddings.npy",
        "num_labels": int(model.config.num_labels),
    }


def t5_modules(model: Any) -> tuple[Any, Any]:
    """A T5's encoder (input_ids, attention_mask -> hidden states) and cache-less decoder
    (decoder_input_ids, encoder_hidden_states, encoder_attention_mask -> next-token
    log-probabilities), as torch modules ready to trace."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.get_encoder()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.encoder(
                input_ids=input_ids, attention_mask=_additive(_mask4d(attention_mask))
            ).last_hidden_state
            return hidden

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            decoder_input_ids: torch.Tensor,
            encoder_hidden_states: torch.Tensor,
            encoder_attention_mask: torch.Tensor,
        ) -> torch.Tensor:
            logits = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),  # type: ignore[arg-type]
                attention_mask=_additive(_mask4d(encoder_attention_mask)),
                decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=_causal4d(decoder_input_ids),
                use_cache=False,
            ).logits
            return torch.log_softmax(logits, dim=-1)

    return Encoder(), Decoder()


def convert_classifier(source: Path, out: Path) -> dict[str, Any]:
    """T5: encoder and a cache-less decoder that returns next-token log-probabilities."""
    import openvino as ov
    import torch
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(source).eval()
    encoder, decoder = t5_modules(model)
    d_model = int(model.config.d_model)
    ids = torch.ones(2, 16, dtype=torch.long)
    with torch.no_grad():
        enc = ov.convert_model(encoder, example_input={"input_ids": ids, "attention_mask": ids})
        dec = ov.convert_model(
            decoder,
            example_input={
                "decoder_input_ids": torch.zeros(2, 3, dtype=torch.long),
                "encoder_hidden_states": torch.zeros(2, 16, d_model),
                "encoder_attention_mask": ids,
            },
        )
    _name_io(enc, ["input_ids", "attention_mask"], ["last_hidden_state"])
    _name_io(dec, ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask"], ["log_probs"])
    max_len = MAX_LENGTH["classifier"]
    ov.save_model(enc, out / "openvino_encoder_model.xml", compress_to_fp16=False)
    ov.save_model(dec, out / "openvino_decoder_model.xml", compress_to_fp16=False)
    return {
        "max_length": max_len,
        "decoder_start_token_id": int(model.config.decoder_start_token_id or 0),
        "eos_token_id": int(model.config.eos_token_id or 1),
    }


def _mask4d(mask: Any) -> Any:
    """A (batch, 1, 1, seq) boolean mask: transformers 5 cannot build its own mask while traced."""
    return mask[:, None, None, :].bool()


def _additive(mask4d: Any) -> Any:
    """T5 adds its mask to the position bias: 0 where attending, the float minimum elsewhere."""
    import torch

    return (1.0 - mask4d.to(torch.float32)) * torch.finfo(torch.float32).min


def _causal4d(ids: Any) -> Any:
    """A (batch, 1, len, len) lower-triangular additive mask for the T5 decoder."""
    import torch

    n = ids.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    return _additive(causal[None, None, :, :].expand(ids.shape[0], 1, n, n))


def _name_io(model: Any, inputs: list[str], outputs: list[str]) -> None:
    for port, name in zip(model.inputs, inputs, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(model.outputs, outputs, strict=True):
        port.get_tensor().set_names({name})


CONVERTERS = {"embedding": convert_embedding, "reranker": convert_reranker, "classifier": convert_classifier}


def prepare_openvino_reranker(source: Path, out: Path) -> dict[str, Any]:
    """A pre-converted OpenVINO reranker, with its word table taken out of the graph (see
    word_table: compiled inside a statically quantized graph, it takes ≈700 MB). A graph whose
    lookup cannot be taken out is kept as it is."""
    import openvino as ov

    from .word_table import UnsupportedGraphError, detach_word_table, graph_precision

    model = ov.Core().read_model(source / "openvino_model.xml")
    info: dict[str, Any] = {"source_format": "openvino", "precision": graph_precision(model)}
    try:
        # An FP32 graph keeps an exact FP32 table (8-bit tables stay 8-bit in any case).
        dtype = np.float32 if info["precision"] == "fp32" else np.float16
        info.update(detach_word_table(model, out / "word_embeddings.npy", dtype))
    except UnsupportedGraphError as err:
        _LOGGER.warning("Keeping the word table inside the reranker graph: %s", err)
    ov.save_model(model, out / "openvino_model.xml", compress_to_fp16=False)
    return info


def precision_label(precision: str) -> str:
    """What /v1/models and the entry's info call the graphs of ``precision``."""
    if weight_only(precision):
        return "int8-weights"
    return precision


def convert(role: str, source: Path, out: Path, precision: str) -> dict[str, Any]:
    """Convert ``source`` (an ONNX folder or an HF checkpoint folder: to FP32; a pre-converted
    OpenVINO reranker: as published) into ``out`` and write the info file; returns it. Every
    other precision is made from the FP32 entry by :func:`derive`."""
    if role not in CONVERTERS:
        raise ValueError(f"unknown role {role!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    if role == "reranker" and (source / OV_MODEL).exists():  # as published: FP32 or static INT8
        return _write_info(source, out, role, prepare_openvino_reranker)
    if precision != "fp32":
        raise ValueError(
            f"checkpoints and ONNX graphs are converted to FP32; the {role}'s {precision} entry "
            "is made from that one (--derive)"
        )
    if is_onnx(source, role):
        return _write_info(source, out, role, lambda src, dest: convert_onnx(role, src, dest))
    cfg = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if cfg.get("auto_map"):
        # Custom code would need trust_remote_code, which we never grant.
        raise ValueError("model needs custom code (trust_remote_code), which is not allowed")

    def build(src: Path, dest: Path) -> dict[str, Any]:
        return {"precision": "fp32", **CONVERTERS[role](src, dest)}

    return _write_info(source, out, role, build)


def is_onnx(folder: Path, role: str) -> bool:
    """Whether ``folder`` holds the ONNX graph(s) of ``role`` (and no OpenVINO IR)."""
    if role == "classifier":
        return (folder / ONNX_ENCODER).exists() and (folder / ONNX_DECODER).exists()
    return (folder / ONNX_MODEL).exists() and not (folder / OV_MODEL).exists()


def convert_onnx(role: str, source: Path, out: Path) -> dict[str, Any]:
    """ONNX graph(s) to an FP32 IR with OpenVINO's ONNX frontend: no torch, no nncf.

    The classifier's decoder keeps only its first output (the logits; an exported decoder also
    returns its key/value cache); a reranker's word table is taken out of the graph.
    """
    import openvino as ov

    if role == "classifier":
        enc = ov.convert_model(source / ONNX_ENCODER)
        dec = ov.convert_model(source / ONNX_DECODER)
        if len(dec.outputs) > 1:
            dec = ov.Model([dec.output(0)], dec.get_parameters(), "decoder")
        ov.save_model(enc, out / OV_ENCODER, compress_to_fp16=False)
        ov.save_model(dec, out / OV_DECODER, compress_to_fp16=False)
        return {"source_format": "onnx", "precision": "fp32"}
    model = ov.convert_model(source / ONNX_MODEL)
    info: dict[str, Any] = {"source_format": "onnx", "precision": "fp32"}
    if role == "reranker":
        from .word_table import UnsupportedGraphError, detach_word_table

        try:
            info.update(detach_word_table(model, out / "word_embeddings.npy", np.float32))
        except UnsupportedGraphError as err:
            _LOGGER.warning("Keeping the word table inside the reranker graph: %s", err)
    ov.save_model(model, out / OV_MODEL, compress_to_fp16=False)
    return info


def derive(role: str, source: Path, out: Path, precision: str) -> dict[str, Any]:
    """A variant of the FP32 cache entry ``source``, with OpenVINO alone: static INT8 (weights
    and activations, calibrated on pattern texts; the classifier's decoder weight-only, see the
    module docstring), weight-only INT8 (``int8w``) or the same graphs with FP16 weights
    (``fp16``)."""
    if precision not in ("int8", "int8w", "fp16"):
        raise ValueError(f"only INT8 and FP16 variants are derived, not {precision!r}")
    fp32_info = read_info(source)

    def build(src: Path, dest: Path) -> dict[str, Any]:
        import openvino as ov

        core = ov.Core()
        info = {k: v for k, v in fp32_info.items() if k not in ("format", "convert_seconds")}
        info["precision"] = precision_label(precision)
        info["derived_from"] = "fp32"
        if precision == "int8":
            from .static_int8 import weight_steps

            info["weight_steps"] = weight_steps()  # 7 bits where this CPU's INT8 kernels saturate

        def static(model: Any) -> Any:
            items = _calibration_items(role, src, model, fp32_info)
            return _quantize(model, items, (src,), steps=info["weight_steps"])

        variant = {"fp16": _halved, "int8w": _compress_weights, "int8": static}[precision]
        for name in (OV_ENCODER, OV_DECODER) if role == "classifier" else (OV_MODEL,):
            # The classifier's one decoder step is memory-bound: weight-only in static INT8 too.
            make = _compress_weights if name == OV_DECODER and precision == "int8" else variant
            ov.save_model(make(core.read_model(src / name)), dest / name, compress_to_fp16=False)
        _copy_word_table(src, dest, fp32_info)
        return info

    return _write_info(source, out, role, build)


def _halved(model: Any) -> Any:
    """``model`` with its weights stored in FP16 (decompressed by the CPU plugin as it packs them),
    except the tables its Gathers look rows up in (T5's word table, in both graphs): those stay
    FP32. A lookup from an FP16 table runs in FP16 under BF16 inference, and on flan-t5-small's
    shape that flipped 1.3 % of the decisive priority answers against FP32 (1 % with FP32 weights
    in BF16); with FP32 tables, 0.4 %. Tables hold only the rows in use in memory either way."""
    import openvino as ov
    from openvino._offline_transformations import compress_model_transformation

    tables = [
        (op, op.input_value(0))
        for op in model.get_ops()
        if op.get_type_name() == "Gather"
        and op.input_value(0).get_node().get_type_name() == "Constant"
        and op.input_value(0).get_element_type() == ov.Type.f32
        and len(op.input_value(0).get_partial_shape()) == 2
    ]
    compress_model_transformation(model)  # what ov.save_model(compress_to_fp16=True) runs
    for gather, table in tables:
        gather.input(0).replace_source_output(table)
    return model


def _copy_word_table(src: Path, dest: Path, info: dict[str, Any]) -> None:
    """The FP32 entry's word table (a reranker's), beside a derived graph: an 8-bit table as it
    is with its scales; a float one in FP16, as the converter keeps it beside an INT8 graph."""
    table = info.get("embeddings")
    if table and info.get("embeddings_scale"):
        for key in ("embeddings", "embeddings_scale", "embeddings_zero_point"):
            if info.get(key):
                shutil.copy(src / info[key], dest / info[key])
    elif table:
        _save_fp16(src / table, dest / table)


def _save_fp16(source: Path, dest: Path, rows: int = 8192) -> None:
    """Copy a (vocab, hidden) float table as FP16, a block of ``rows`` at a time, read and written
    as files: through memory maps, both whole files stayed resident in the converting process
    (XLM-R's table, 768 MB: a weight-only INT8 conversion peaked at 1,240 MB instead of 496)."""
    mapped = np.load(source, mmap_mode="r")  # reads the header only: shape, type, data offset
    shape, dtype, offset, rows_first = (
        mapped.shape,
        mapped.dtype,
        int(mapped.offset),
        mapped.flags.c_contiguous,
    )
    del mapped
    if len(shape) != 2 or not rows_first:
        raise ValueError(f"{source.name}: a word table is a C-ordered (vocab, hidden) array")
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
        "fortran_order": False,
        "shape": shape,
    }
    with source.open("rb") as src, dest.open("wb") as out:
        np.lib.format.write_array_header_1_0(out, header)
        src.seek(offset)
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start) * shape[1]
            block = np.fromfile(src, dtype=dtype, count=count)  # np.load checked the length
            out.write(block.astype(np.float16).tobytes())


def _calibration_items(role: str, folder: Path, model: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """Pattern texts (query + document pairs for a reranker, the classifier's prompts for its
    encoder) as the graph's inputs, in batches."""
    names = {port.get_any_name() for port in model.inputs}
    offset = 2 if role == "reranker" else 0
    max_len = int(info.get("max_length") or config_max_length(folder, MAX_LENGTH[role], offset=offset))
    tok = load_tokenizer(folder, max_len)
    texts: list[Any]
    if role == "reranker":
        queries = query_texts()
        texts = [
            (queries[i % len(queries)], d) for i, d in enumerate(pattern_texts(CALIBRATION_TEXTS, seed=13))
        ]
    elif role == "classifier":
        texts = _classifier_prompts(pattern_texts(CLASSIFIER_CALIBRATION_TEXTS, seed=11))
    else:
        texts = pattern_texts(CALIBRATION_TEXTS, seed=11)
    pad = pad_token_id(tok, 1 if role == "reranker" else 0)
    rows = token_rows(tok, texts)
    table = None
    if "inputs_embeds" in names:
        from .word_table import WordTable

        table = WordTable(folder, info)
    items = []
    for ids, mask in _batches(rows, pad, 8, max_len):
        item: dict[str, Any] = {"attention_mask": mask}
        if "input_ids" in names:
            item["input_ids"] = ids
        if "token_type_ids" in names:
            item["token_type_ids"] = np.zeros_like(ids)
        if table is not None:
            item["inputs_embeds"] = table.lookup(ids)
        items.append(item)
    return items


def _classifier_prompts(texts: list[str]) -> list[str]:
    """The prompts the classifier encodes for ``texts``: both questions for three quarters of
    them, the category question with the text's context for the last quarter."""
    plain = len(texts) * 3 // 4
    asked = [make(t) for t in texts[:plain] for make in (category_prompt, priority_prompt)]
    return asked + [category_prompt(t, context_from_text(t)) for t in texts[plain:]]


def _write_info(
    source: Path, out: Path, role: str, build: Callable[[Path, Path], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``build`` into ``out``, copy the tokenizer files beside it and write the info file."""
    started = time.monotonic()
    cfg = read_config(source)
    out.mkdir(parents=True, exist_ok=True)
    info = build(source, out)
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    info.update(
        {
            "format": FORMAT,
            "role": role,
            "architecture": (cfg.get("architectures") or [cfg.get("model_type", "?")])[0],
            "convert_seconds": round(time.monotonic() - started, 2),
        }
    )
    (out / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    """CLI entry point of the conversion child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", required=True, choices=sorted(CONVERTERS))
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS))
    parser.add_argument("--derive", action="store_true", help="derive a variant of the FP32 entry --source")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        run = derive if args.derive else convert
        info = run(args.role, args.source, args.output, args.precision)
    except Exception as err:  # report one clear line to the parent, which shows it as the role error
        print(f"conversion failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
