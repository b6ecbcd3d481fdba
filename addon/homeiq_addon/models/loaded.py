"""What every loaded model shares: its folder, tokenizer, info file and compile settings."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import openvino as ov
from openvino.utils.data_helpers import OVDict
from tokenizers import Tokenizer

from . import runtime
from .batching import LENGTH_STEPS, Batch, PackedBatch, plan_batches, plan_packed
from .graph_weights import held_weight_bytes
from .packing import packed_graph
from .unigram import UnigramTokenizer

_LOGGER = logging.getLogger(__name__)
INFO_FILE = "homeiq-model.json"  # what convert.py wrote about a model it converted
SAMPLE_TEXT = "Bedroom light turns on around 07:00 on weekdays"  # a pattern, as the integration words it


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How to compile a model: device, threads and OpenVINO's compiled-model cache."""

    device: str = "CPU"
    threads: int = 1
    cache_dir: Path | None = None
    warm: bool = True
    max_batch: int = 32
    token_budget: int = 1024  # tokens per inference: bounds the intermediate buffers (RSS)
    inference_precision: str = "f32"  # on CPU: f32, or bf16/f16 where precision auto chose it


def read_info(model_dir: Path) -> dict[str, Any]:
    """Return the converter's info file, or {} for a pre-converted OpenVINO folder."""
    path = model_dir / INFO_FILE
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class Encoding(Protocol):
    """What the add-on reads of an encoding."""

    @property
    def ids(self) -> list[int]:
        """The token ids."""


class TextTokenizer(Protocol):
    """What the add-on calls on a tokenizer: a ``tokenizers.Tokenizer``, or for a Unigram model
    a :class:`~.unigram.UnigramTokenizer` (the same ids with a fraction of the memory)."""

    def encode(
        self,
        sequence: str,
        pair: str | None = None,
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
    ) -> Encoding:
        """Encode a text, or a text pair."""

    def encode_batch_fast(
        self,
        input: Sequence[str | tuple[str, str]],
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
    ) -> Sequence[Encoding]:
        """Encode texts or text pairs."""

    def enable_truncation(
        self, max_length: int, stride: int = 0, strategy: str = "longest_first", direction: str = "right"
    ) -> None:
        """Cut encodings to ``max_length`` tokens."""

    def no_padding(self) -> None:
        """Leave encodings unpadded."""

    def token_to_id(self, token: str) -> int | None:
        """A token's id, or None."""


def load_tokenizer(model_dir: Path, max_length: int) -> TextTokenizer:
    """The model's tokenizer.json with padding off (we pad to shape buckets) and truncation on.
    A Unigram model (XLM-R, T5) loads as a :class:`~.unigram.UnigramTokenizer`: tokenizers'
    own Unigram model holds XLM-R's vocabulary in 275-296 MB of RSS, ours in about 25 MB."""
    path = model_dir / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{model_dir.name} has no tokenizer.json (only fast tokenizers are supported)"
        )
    text = path.read_text(encoding="utf-8")
    tok: TextTokenizer = UnigramTokenizer.from_json(text) or Tokenizer.from_str(text)
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def token_rows(tok: TextTokenizer, inputs: Sequence[str] | Sequence[tuple[str, str]]) -> list[list[int]]:
    """Token ids of each text (or text pair), truncated. ``encode_batch_fast`` skips the character
    offsets nothing here reads: 256 pattern texts tokenize in 6.8 ms instead of 8.1 ms."""
    return [e.ids for e in tok.encode_batch_fast(list(inputs))]


def pad_token_id(tok: TextTokenizer, default: int) -> int:
    """The tokenizer's padding id."""
    for name in ("<pad>", "[PAD]"):
        tid = tok.token_to_id(name)
        if tid is not None:
            return int(tid)
    return default


def read_config(model_dir: Path) -> dict[str, Any]:
    """The model's config.json, or {} when it is missing or unreadable."""
    try:
        data: dict[str, Any] = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def config_max_length(model_dir: Path, default: int, offset: int = 0) -> int:
    """max_position_embeddings from config.json (minus XLM-R's padding offset), capped by default."""
    try:
        return min(default, int(read_config(model_dir)["max_position_embeddings"]) - offset)
    except (KeyError, ValueError):
        return default


class BucketedModel:
    """What the three model roles share at run time: compiling with the load options, planning
    length-bucketed (or packed) batches, one inference at a time per model (whichever thread
    asks), giving back the heap a new shape freed, and a warm-up that runs one sample request."""

    max_length: int
    length_steps: int = LENGTH_STEPS  # length buckets per doubling (batching.bucket_length)
    packed: bool = False  # runs several texts a row (packing.py)
    _first_position: int = 0  # the position id of a row's first token in a packed graph

    def __init__(self, options: LoadOptions, model_dir: Path) -> None:
        """Keep the load options and where the model's files are; nothing has run yet."""
        self._options = options
        # What the compiled model may map: its IR, and the blobs of OpenVINO's compiled-model cache.
        self._file_roots = [model_dir, *([options.cache_dir] if options.cache_dir else [])]
        self._lock = threading.Lock()
        self._shapes_run: set[tuple[tuple[str, tuple[int, ...]], ...]] = set()
        self._ran_new_shape = False
        self._compiled_models: list[ov.CompiledModel] = []

    def weight_bytes(self) -> int:
        """How much memory the weights of this model's compiled graphs hold (an upper bound:
        graph_weights.held_weight_bytes)."""
        return sum(held_weight_bytes(compiled) for compiled in self._compiled_models)

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """One inference at a time per model, whichever thread asks; a call that ran a shape this
        model had not run before ends by giving the C heap's free pages back to the system, and
        the pages of the model's files it mapped (read back from the file where needed).

        OpenVINO builds a new shape's kernels and buffers on its first run and frees much of
        what it used for that, which glibc keeps: on a Zen 1 EPYC the static INT8 reranker's 80
        shapes left 117 MB of free heap resident (538 MB, 420 MB after a trim). Building them
        also reads the model's files again (the compiled-model cache's blobs), whose pages then
        stay resident: releasing them too, the default image on a 2-core AMX Xeon held 540-575 MB
        instead of 603-650 after its first /v1/suggest and 851-885 instead of 920-970 through
        every shape. Seen shapes never trim again, so a steady workload pays nothing (a heap trim
        took 0.3-1.6 ms on the EPYC; releasing the file pages 3.4 ms on the Xeon, and the next
        run 2.5 ms to read back what it uses).
        """
        with self._lock:
            try:
                yield
            finally:
                if self._ran_new_shape:
                    self._ran_new_shape = False
                    runtime.release_file_pages(self._file_roots)
                    runtime.release_free_heap()

    def _run_request(self, request: ov.InferRequest, feed: dict[str, Any]) -> OVDict:
        """``request.infer(feed)``, noting whether its input shapes are new to this model."""
        shapes = tuple(sorted((name, tuple(value.shape)) for name, value in feed.items()))
        if shapes not in self._shapes_run:
            self._shapes_run.add(shapes)
            self._ran_new_shape = True
        return request.infer(feed)

    def _plan(self, lengths: Sequence[int]) -> Iterator[Batch]:
        """One text a row: length-sorted, bucketed batches within the load options' bounds."""
        return plan_batches(
            lengths,
            max_length=self.max_length,
            max_batch=self._options.max_batch,
            token_budget=self._options.token_budget,
            steps=self.length_steps,
        )

    def _plan_packed(self, lengths: Sequence[int]) -> Iterator[PackedBatch]:
        """Several texts a row (for a graph :meth:`_compile_packed` rewrote), the same bounds."""
        return plan_packed(
            lengths,
            max_length=self.max_length,
            max_batch=self._options.max_batch,
            token_budget=self._options.token_budget,
        )

    def _compile_packed(self, ir_file: Path, *, head: bool, cache: bool | None = None) -> ov.CompiledModel:
        """Compile ``ir_file`` rewritten to run several texts a row where packing.py recognises
        its graph (``head``: a classification head reads each text's first token), else as it is;
        sets :attr:`packed` and :attr:`_first_position` to match."""
        graph = packed_graph(runtime.core().read_model(ir_file), head=head)
        self.packed = graph is not None
        self._first_position = graph.first_position if graph else 0
        return self._compile(graph.model if graph else ir_file, cache=cache)

    def _compile(self, ir_file: Path | ov.Model, *, cache: bool | None = None) -> ov.CompiledModel:
        """Compile an IR file with this model's load options (from the path, so that a CACHE_DIR hit
        skips reading the IR). A graph changed at load (an ``ov.Model``) skips the compiled-model
        cache unless ``cache`` says otherwise: OpenVINO would read all its weights to hash it, which
        measured on flan-t5-small's decoder put 155 MB more of the IR in memory to save 0.14 s of
        compiling.

        When a GPU/NPU/AUTO device cannot compile it (a driver problem, an operation or dynamic
        shape the device does not support), it runs on the CPU instead."""
        compiled = self._compile_on_device(ir_file, cache=cache)
        self._compiled_models.append(compiled)
        return compiled

    def _compile_on_device(self, ir_file: Path | ov.Model, *, cache: bool | None) -> ov.CompiledModel:
        device = self._options.device
        cached = isinstance(ir_file, Path) if cache is None else cache
        cache_dir = self._options.cache_dir if cached else None
        try:
            return runtime.compile_model(
                ir_file,
                device=device,
                threads=self._options.threads,
                cache_dir=cache_dir,
                inference_precision=self._options.inference_precision,
            )
        except RuntimeError as err:  # what OpenVINO raises for a device that cannot compile
            if device == "CPU":
                raise
            reason = runtime.error_text(err)
            _LOGGER.warning(
                "The %s device could not compile %s (%s); running it on CPU instead",
                device,
                ir_file.name if isinstance(ir_file, Path) else ir_file.get_friendly_name(),
                reason,
            )
        return runtime.compile_model(
            ir_file,
            device="CPU",
            threads=self._options.threads,
            cache_dir=cache_dir,
            inference_precision=self._options.inference_precision,
        )

    def warm(self, shapes: Sequence[tuple[int, int]] | None = None) -> None:
        """Run one sample request now, through the model's own path (:meth:`_sample_request`), so
        that the first real request does not pay for the model's first inference; or run each of
        ``shapes`` once (the benchmark's bound on memory). Blocking.

        Why one request and not every common shape: the first inference of a model packs its
        weights (60-150 ms per role, measured), a new shape after that costs 4-41 ms once, and
        each shape held costs memory (1-34 MB, growing with its rows). Twelve short buckets per
        role held 63 MB after start (77 MB after a first /v1/suggest, which did not use them): the
        reranker's pairs and the classifier's prompts are longer than any of them, and the first
        suggestion run was no faster with them.
        """
        if shapes is None:
            with self._inference():
                self._sample_request()
            return
        for batch, length in shapes:  # one at a time, as requests come: each new shape trims
            with self._inference():
                self._warm_shape(batch, length)

    def _sample_request(self) -> None:
        """One request as the add-on's clients send it, with :data:`SAMPLE_TEXT`."""
        raise NotImplementedError

    def _warm_shape(self, batch: int, length: int) -> None:
        """One padding-only inference of this (batch, length) shape."""
        raise NotImplementedError
