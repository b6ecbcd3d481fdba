"""Tiny model repositories laid out like the real hub repositories of the default models.

- :func:`sentence_transformers_repo`: ``sentence-transformers/all-MiniLM-L6-v2``'s layout: the
  PyTorch checkpoint and tokenizer at the root, ``onnx/model.onnx``, and ``openvino/`` with the
  FP32 IR (optimum-intel's feature-extraction export: ``last_hidden_state`` out) and the static
  INT8 one (``openvino_model_qint8_quantized.xml``);
- :func:`onnx_reranker_repo`: ``BAAI/bge-reranker-base``'s: checkpoint, tokenizer and
  ``onnx/model.onnx`` (``input_ids``, ``attention_mask`` -> ``logits``);
- :func:`onnx_seq2seq_repo`: ``Xenova/flan-t5-small``'s: tokenizer and config at the root,
  ``onnx/encoder_model.onnx`` and ``onnx/decoder_model.onnx`` (which also returns its cache).

Built from the tiny models of ``tests.tiny_models`` with torch, optimum-intel, nncf and onnx,
which only the test side needs; the add-on under test reads them without any of those.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

from homeiq_addon.models.pattern_texts import pattern_texts

ST_FP32 = "openvino/openvino_model.xml"
ST_INT8 = "openvino/openvino_model_qint8_quantized.xml"


def _copy_root_files(source: Path, out: Path) -> None:
    """Config, tokenizer and checkpoint files at the repository's root."""
    out.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)


def sentence_transformers_repo(source: Path, out: Path) -> Path:
    """The tiny BERT of ``source`` as sentence-transformers publishes an embedding model."""
    import nncf
    import numpy as np
    import openvino as ov
    from optimum.intel import OVModelForFeatureExtraction
    from tokenizers import Tokenizer

    _copy_root_files(source, out)
    export = out.parent / f"{out.name}-export"
    OVModelForFeatureExtraction.from_pretrained(source, export=True, compile=False).save_pretrained(export)
    (out / "openvino").mkdir()
    shutil.copy(export / "openvino_model.xml", out / ST_FP32)
    shutil.copy(export / "openvino_model.bin", out / ST_FP32.replace(".xml", ".bin"))
    tok = Tokenizer.from_file(str(source / "tokenizer.json"))
    items = []
    for i in range(0, 64, 8):
        enc = tok.encode_batch(pattern_texts(64)[i : i + 8])
        n = max(len(e.ids) for e in enc)
        ids = np.array([e.ids + [0] * (n - len(e.ids)) for e in enc], dtype=np.int64)
        mask = np.array([[1] * len(e.ids) + [0] * (n - len(e.ids)) for e in enc], dtype=np.int64)
        items.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    model = nncf.quantize(
        ov.Core().read_model(export / "openvino_model.xml"),
        nncf.Dataset(items),
        subset_size=len(items),
        model_type=nncf.ModelType.TRANSFORMER,
    )
    ov.save_model(model, out / ST_INT8, compress_to_fp16=False)
    shutil.rmtree(export)
    _export_onnx(_feature_extractor(source), _example_ids(), out / "onnx/model.onnx", ["last_hidden_state"])
    return out


def onnx_reranker_repo(source: Path, out: Path) -> Path:
    """The tiny XLM-R cross-encoder of ``source`` with ``onnx/model.onnx`` beside its checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from homeiq_addon.models.convert import _mask4d

    _copy_root_files(source, out)
    model = AutoModelForSequenceClassification.from_pretrained(source).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.model(
                input_ids=input_ids, attention_mask=_mask4d(attention_mask)
            ).logits
            return logits

    _export_onnx(Wrapper(), _example_ids(), out / "onnx/model.onnx", ["logits"])
    return out


def onnx_seq2seq_repo(source: Path, out: Path) -> Path:
    """The tiny T5 of ``source`` as transformers.js publishes flan-t5: tokenizer and config at the
    root, encoder and decoder ONNX graphs (the decoder returns a cache output after its scores)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from homeiq_addon.models.convert import t5_modules

    out.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file() and not f.name.endswith(".safetensors"):
            shutil.copy(f, out / f.name)
    model = AutoModelForSeq2SeqLM.from_pretrained(source).eval()
    encoder, decoder = t5_modules(model)

    class WithCache(torch.nn.Module):
        """The decoder with a second output, as exported decoders return their key/value cache.
        Its first output is log-probabilities where an export has logits: the same scores after
        the runtime's log-softmax."""

        def __init__(self) -> None:
            super().__init__()
            self.decoder = decoder

        def forward(
            self, input_ids: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            return self.decoder(input_ids, hidden, mask), hidden * 2.0

    ids, mask = _example_ids()
    _export_onnx(encoder, (ids, mask), out / "onnx/encoder_model.onnx", ["last_hidden_state"])
    hidden = torch.zeros(2, 16, int(model.config.d_model))
    _export_onnx(
        WithCache(),
        (torch.zeros(2, 3, dtype=torch.long), hidden, mask),
        out / "onnx/decoder_model.onnx",
        ["logits", "present.0.encoder.key"],
        names=["input_ids", "encoder_hidden_states", "encoder_attention_mask"],
    )
    return out


def default_layout_repos(tiny: dict[str, Path], root: Path, ids: dict[str, str]) -> dict[str, Path]:
    """The three default layouts built under ``root`` from the tiny models of
    ``tests.tiny_models.build_all``, by repository id (``ids``: role -> id): sentence-transformers'
    for the embedding model, ONNX for the reranker and the classifier."""
    return {
        ids["embedding"]: sentence_transformers_repo(tiny["embedding"], root / "st"),
        ids["reranker"]: onnx_reranker_repo(tiny["reranker"], root / "reranker"),
        ids["classifier"]: onnx_seq2seq_repo(tiny["classifier"], root / "classifier"),
    }


def _example_ids() -> tuple[Any, Any]:
    import torch

    return torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long)


def _feature_extractor(source: Path) -> Any:
    import torch
    from transformers import AutoModel

    from homeiq_addon.models.convert import _mask4d

    model = AutoModel.from_pretrained(source).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.model(
                input_ids=input_ids,
                attention_mask=_mask4d(attention_mask),
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            return hidden

    return Wrapper()


def _export_onnx(
    module: Any, example: tuple[Any, ...], path: Path, outputs: list[str], names: list[str] | None = None
) -> None:
    """``module`` as an ONNX graph with dynamic batch and sequence axes on every input."""
    import torch

    names = names or ["input_ids", "attention_mask"]
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic: dict[str, dict[int, str]] = {name: {0: "batch", 1: f"{name}_length"} for name in names}
    dynamic.update({name: {0: "batch"} for name in outputs})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter notes about a fixed tiny model
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=dynamic,
            dynamo=False,
        )
