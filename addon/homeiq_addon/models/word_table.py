"""Take the word-embedding lookup out of a pre-converted OpenVINO reranker.

A pre-converted XLM-R reranker (``OpenVINO/bge-reranker-base-int8-ov`` and the like) looks its
250,002 x 768 word table up inside the graph. When the graph is statically quantized, the CPU
plugin expands that table to FP32 as it compiles: measured on bge-reranker-base's architecture,
1,050 MB resident and a 1.8 GB peak, against 325 MB (339 MB peak) with the table taken out, at
the same speed. (A weight-only compressed graph keeps its table compressed: 291 vs 298 MB.)
Here the lookup becomes an ``inputs_embeds`` input and the table is saved beside the graph as
``.npy`` files, which the runtime memory-maps: only the rows of the tokens in use are read.
``input_ids`` stays an input (XLM-R derives its position ids from it). Nothing else in the
graph changes; an 8-bit table is kept 8-bit with its scales, so the scores stay exactly the
same (a float table is saved in FP16, or FP32 for an FP32 graph).

Only needs ``openvino`` and ``numpy``; it runs in the conversion child process anyway, so the
serving process never holds the model and the table at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from openvino import opset13 as ops

EMBEDS_INPUT = "inputs_embeds"
ROWS_PER_CHUNK = 8192  # bounds the memory used to dequantize the table
_ELEMENTWISE: dict[str, Callable[[Any, Any], Any]] = {
    "Add": np.add,
    "Subtract": np.subtract,
    "Multiply": np.multiply,
}


class UnsupportedGraphError(ValueError):
    """The graph's word-embedding lookup has a shape this module does not know how to read."""


def graph_precision(model: ov.Model) -> str:
    """What a pre-converted graph really is: ``int8`` (static: activations too),
    ``int8-weights``/``int4-weights`` (weight-only compression), ``fp16`` or ``fp32``."""
    weight_bits = 32
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize":
            return "int8"
        if kind == "Constant":
            et = op.get_output_element_type(0)
            if et.is_integral() and et.bitwidth <= 8 and len(op.get_output_shape(0)) >= 2:
                weight_bits = min(weight_bits, et.bitwidth)
            elif et == ov.Type.f16:
                weight_bits = min(weight_bits, 16)
    if weight_bits <= 8:
        return f"int{max(weight_bits, 4)}-weights"
    return "fp16" if weight_bits == 16 else "fp32"


def _through_converts(output: ov.Output) -> ov.Output:
    """The output behind ``output``, looking through Convert nodes."""
    while output.get_node().get_type_name() == "Convert":
        output = output.get_node().input_value(0)
    return output


def _source_node(output: ov.Output) -> ov.Node:
    """The node behind ``output``, looking through Convert nodes."""
    return _through_converts(output).get_node()


def find_word_lookup(model: ov.Model) -> ov.Node | None:
    """The Gather that reads the word table with ``input_ids`` (the largest such table), if any."""
    ids = [p for p in model.get_parameters() if "input_ids" in p.output(0).get_names()]
    if not ids:
        return None
    ids_name = ids[0].get_name()
    best: tuple[int, ov.Node] | None = None
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Gather" or _source_node(op.input_value(1)).get_name() != ids_name:
            continue
        table = op.input_value(0).get_partial_shape()
        axis = _source_node(op.input_value(2))
        if not table.is_static or len(table) != 2 or axis.get_type_name() != "Constant":
            continue
        if int(np.asarray(axis.get_data()).reshape(-1)[0]) != 0:
            continue
        rows = table[0].get_length()
        if best is None or rows > best[0]:
            best = (rows, op)
    return best[1] if best else None


def _rows(output: ov.Output, start: int, stop: int, vocab: int) -> np.ndarray[Any, Any]:
    """Rows ``start:stop`` of the (possibly dequantized) table that ``output`` computes."""
    node = output.get_node()
    kind = node.get_type_name()
    if kind == "Constant":
        if node.get_output_element_type(0).bitwidth < 8:
            raise UnsupportedGraphError("the word table is compressed below 8 bits")
        data = np.asarray(node.get_data())
        return data[start:stop] if data.ndim and data.shape[0] == vocab else data
    if kind == "Convert":
        dtype = node.get_output_element_type(0).to_dtype()
        return _rows(node.input_value(0), start, stop, vocab).astype(dtype)
    if kind in _ELEMENTWISE:
        return np.asarray(
            _ELEMENTWISE[kind](
                _rows(node.input_value(0), start, stop, vocab), _rows(node.input_value(1), start, stop, vocab)
            )
        )
    if kind == "Reshape":  # group-wise compression: (vocab, groups, size) -> (vocab, hidden)
        rows = _rows(node.input_value(0), start, stop, vocab)
        return rows.reshape(rows.shape[0], *list(node.get_output_shape(0))[1:])
    raise UnsupportedGraphError(f"cannot read the word table through a {kind} node")


def _dequantizing(output: ov.Output, shape: list[int]) -> tuple[ov.Node, ov.Output | None, ov.Output] | None:
    """(8-bit Constant, zero point or None, scale) when ``output`` is ``(q - zp) * scale`` of a
    table of ``shape``, as NNCF writes compressed and statically quantized weights."""
    mul = _source_node(output)
    if mul.get_type_name() != "Multiply":
        return None
    for q_port, scale_port in ((0, 1), (1, 0)):
        inner = _source_node(mul.input_value(q_port))
        zero_point = None
        if inner.get_type_name() == "Subtract":
            zero_point = inner.input_value(1)
            inner = _source_node(inner.input_value(0))
        if (
            inner.get_type_name() == "Constant"
            and inner.get_output_element_type(0) in (ov.Type.u8, ov.Type.i8)
            and list(inner.get_output_shape(0)) == shape
        ):
            return inner, zero_point, mul.input_value(scale_port)
    return None


def _per_row(output: ov.Output, vocab: int) -> np.ndarray[Any, Any]:
    """A scale or zero point as float32 of shape (vocab, 1)."""
    values = np.asarray(_rows(output, 0, vocab, vocab), dtype=np.float32)
    return np.ascontiguousarray(
        np.broadcast_to(values.reshape(-1, 1) if values.size > 1 else values, (vocab, 1))
    )


def detach_word_table(
    model: ov.Model, table_file: Path, dtype: type[np.floating[Any]] = np.float16
) -> dict[str, str]:
    """Save the word table beside the graph and feed the graph ``inputs_embeds`` in its place.

    An 8-bit table (``(q - zero_point) * scale`` per row) is saved as it is, with its scales:
    exact, and half the size of FP16. Any other table is evaluated and saved as ``dtype``.
    Changes ``model`` in place and returns the info-file keys naming the files. Raises
    UnsupportedGraphError (leaving ``model`` and the folder as they were) when there is no lookup
    to take out or it cannot be read.
    """
    if any(EMBEDS_INPUT in p.output(0).get_names() for p in model.get_parameters()):
        raise UnsupportedGraphError("the graph already takes inputs_embeds")
    gather = find_word_lookup(model)
    if gather is None:
        raise UnsupportedGraphError("no word-embedding lookup on input_ids in the graph")
    vocab, hidden = (int(d) for d in gather.input_value(0).get_shape())
    folder, stem = table_file.parent, table_file.stem
    written: dict[str, str] = {}
    try:
        parts = _dequantizing(gather.input_value(0), [vocab, hidden])
        if parts is not None:
            quantized, zero_point, scale = parts
            np.save(table_file, np.asarray(quantized.get_data()))
            written["embeddings"] = table_file.name
            np.save(folder / f"{stem}_scale.npy", _per_row(scale, vocab))
            written["embeddings_scale"] = f"{stem}_scale.npy"
            if zero_point is not None:
                np.save(folder / f"{stem}_zero_point.npy", _per_row(zero_point, vocab))
                written["embeddings_zero_point"] = f"{stem}_zero_point.npy"
        else:
            table = np.lib.format.open_memmap(table_file, mode="w+", dtype=dtype, shape=(vocab, hidden))
            written["embeddings"] = table_file.name
            for start in range(0, vocab, ROWS_PER_CHUNK):
                stop = min(vocab, start + ROWS_PER_CHUNK)
                table[start:stop] = _rows(gather.input_value(0), start, stop, vocab)
            table.flush()
            del table
    except BaseException:
        for name in written.values():
            (folder / name).unlink(missing_ok=True)
        raise
    embeds = ops.parameter(gather.get_output_partial_shape(0), gather.get_output_element_type(0))
    embeds.set_friendly_name(EMBEDS_INPUT)
    embeds.output(0).get_tensor().set_names({EMBEDS_INPUT})
    for target in list(gather.output(0).get_target_inputs()):
        target.replace_source_output(embeds.output(0))
    model.add_parameters([embeds])
    model.validate_nodes_and_infer_types()
    return written


class WordTable:
    """The run-time side: rows of a detached word table, read from its file as float32.

    Rows are read with ``pread`` rather than through a memory mapping. Mapped, every row read
    brought far more than itself into the process's memory (the kernel maps whole page-cache
    folios around a fault): looking up the 137 distinct tokens of 60 pattern pairs grew RSS by
    102 MB with bge-reranker-base's FP32 table (768 MB) and 13 MB with its 8-bit one, and months of
    varied text would keep adding. Read, the rows live in the page cache, which the kernel shares
    and reclaims, and a lookup costs one system call per distinct token (about 1 ms for 500).
    """

    def __init__(self, model_dir: Path, info: dict[str, Any]) -> None:
        """Open the table named by the info file (and load its scales when it is 8-bit)."""
        path = model_dir / info["embeddings"]
        mapped = np.load(path, mmap_mode="r")  # only to read the header: shape, dtype, offset
        if mapped.ndim != 2 or not mapped.flags.c_contiguous:
            raise ValueError(f"{path.name} is not a C-ordered 2-D table")
        self.shape: tuple[int, int] = (int(mapped.shape[0]), int(mapped.shape[1]))
        self.dtype: np.dtype[Any] = mapped.dtype
        self._offset = int(mapped.offset)
        del mapped
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.scale = self.zero_point = None
        if info.get("embeddings_scale"):
            self.scale = np.load(model_dir / info["embeddings_scale"])
        if info.get("embeddings_zero_point"):
            self.zero_point = np.load(model_dir / info["embeddings_zero_point"])

    def __del__(self) -> None:
        """Close the table's file."""
        with contextlib.suppress(AttributeError, OSError):
            os.close(self._fd)

    def rows(self, ids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The stored rows of ``ids`` (any shape), in the table's own dtype: (*ids.shape, hidden)."""
        flat = np.asarray(ids, dtype=np.int64).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.shape[0]):
            raise IndexError(f"token id out of range for a {self.shape[0]}-row word table")
        unique, inverse = np.unique(flat, return_inverse=True)
        out = np.empty((len(unique), self.shape[1]), dtype=self.dtype)
        for k, token_id in enumerate(unique.tolist()):
            view = memoryview(out[k]).cast("B")
            if os.preadv(self._fd, [view], self._offset + token_id * self._row_bytes) != self._row_bytes:
                raise OSError(f"word table row {token_id} is cut short")
        return out[inverse].reshape(*np.shape(ids), self.shape[1])

    def lookup(self, ids: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """(batch, length) token ids -> (batch, length, hidden) float32 embeddings."""
        rows = np.asarray(self.rows(ids), dtype=np.float32)
        if self.zero_point is not None:
            rows -= self.zero_point[ids]
        if self.scale is not None:
            rows *= self.scale[ids]
        return rows
