"""Which files of a model repository (or local folder) a cache entry is built from.

In the order they are looked for:

1. an optimum-intel export (``openvino_model.xml``, or encoder and decoder IR, at the root):
   used as it is, whatever precision its graphs are;
2. a sentence-transformers ``openvino/`` folder: ``openvino_model.xml`` for FP32 and, where
   published, ``openvino_model_qint8_quantized.xml`` for static INT8;
3. ONNX (``onnx/model.onnx``, or ``onnx/encoder_model.onnx`` + ``onnx/decoder_model.onnx`` for
   the classifier, external-data files included): converted to an FP32 IR without torch;
4. a PyTorch checkpoint (safetensors or ``pytorch_model.bin``): its FP32 entry needs the
   converter (torch).

A static INT8 variant that the repository does not publish, weight-only INT8 and FP16 weights (for
BF16 inference) are made from the FP32 entry, whatever that is built from, with OpenVINO alone, in
any image. An optimum-intel export is the exception: every precision uses it as it is. Only the
files a plan names are downloaded.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .convert import (
    ONNX_DECODER,
    ONNX_ENCODER,
    ONNX_MODEL,
    OV_DECODER,
    OV_ENCODER,
    OV_MODEL,
    reduced,
)
from .types import NO_MODEL_FILES, ModelCacheError, Role

# Root-level files worth downloading beside the weights: config and tokenizer files.
_SMALL_FILES = re.compile(r"^[^/]+\.(json|txt|model)$")
_CHECKPOINT = re.compile(r"^(model(-\d+-of-\d+)?\.safetensors|pytorch_model(-\d+-of-\d+)?\.bin)$")
ST_FOLDER = "openvino/"  # sentence-transformers' OpenVINO exports
ST_FP32 = "openvino_model"
ST_INT8 = "openvino_model_qint8_quantized"  # static INT8 (export_static_quantized_openvino_model)


def available_tools() -> frozenset[str]:
    """The optional converters installed here: ``torch`` (PyTorch checkpoints, with transformers),
    which only the converter image has."""
    found = set()
    if importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers"):
        found.add("torch")
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Plan:
    """How to build one entry: what kind of source, and which files (repository path -> name in
    the folder the entry is built from)."""

    # "openvino" (used as it is), "onnx", "checkpoint", "derived" (static INT8 of the FP32 entry,
    # calibrated) or "reduced" (the FP32 entry's graphs with FP16 or INT8 weights); both derived
    # kinds with OpenVINO alone
    kind: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def needs(self) -> str | None:
        """The optional converter this plan runs: ``torch`` or None."""
        return "torch" if self.kind == "checkpoint" else None


def _pair(names: set[str], folder: str, stem: str, target: str) -> dict[str, str]:
    """``folder/stem.xml`` and ``.bin`` mapped to ``target`` (.xml/.bin), when both exist."""
    xml, weights = f"{folder}{stem}.xml", f"{folder}{stem}.bin"
    if xml in names and weights in names:
        base = target.removesuffix(".xml")
        return {xml: f"{base}.xml", weights: f"{base}.bin"}
    return {}


def _onnx(names: set[str], role: Role) -> dict[str, str]:
    """The ONNX graph(s) of ``role`` with their external-data files, from ``onnx/`` or the root."""
    wanted = (ONNX_ENCODER, ONNX_DECODER) if role is Role.CLASSIFIER else (ONNX_MODEL,)
    for folder in ("onnx/", ""):
        if all(folder + name in names for name in wanted):
            found = {folder + name: name for name in wanted}
            for name in wanted:  # weights kept outside the graph file (graphs over 2 GB)
                for data in (f"{name}_data", f"{name}.data"):
                    if folder + data in names:
                        found[folder + data] = data
            return found
    return {}


def plan_files(names: Iterable[str], role: Role, precision: str) -> Plan:
    """What to build an entry of ``precision`` from, given a repository's file names."""
    names = set(names)
    small = {n: n for n in names if _SMALL_FILES.match(n)}
    # The root's IR files, and word tables kept beside a graph (.npy) as this add-on writes them.
    root_ir = {n: n for n in names if re.match(r"^(openvino_[^/]*\.(xml|bin)|[^/]*\.npy)$", n)}
    if OV_MODEL in root_ir or (OV_ENCODER in root_ir and OV_DECODER in root_ir):
        return Plan("openvino", small | root_ir)  # an optimum-intel export, used as it is
    if reduced(precision):
        _source_plan(names, small, role, "fp32")  # raises when there is nothing to build it from
        return Plan("reduced")
    return _source_plan(names, small, role, precision)


def _source_plan(names: set[str], small: dict[str, str], role: Role, precision: str) -> Plan:
    """The plan for a repository that is not an optimum-intel export."""
    st = _pair(names, ST_FOLDER, ST_FP32, OV_MODEL)
    if st and role is not Role.CLASSIFIER:
        if precision == "fp32":
            return Plan("openvino", small | st)
        if precision == "int8" and (int8 := _pair(names, ST_FOLDER, ST_INT8, OV_MODEL)):
            return Plan("openvino", small | int8)
        return Plan("derived")
    onnx = _onnx(names, role)
    if onnx:
        return Plan("onnx", small | onnx) if precision == "fp32" else Plan("derived")
    checkpoint = {n: n for n in names if _CHECKPOINT.match(n)}
    if checkpoint:
        return Plan("checkpoint", small | checkpoint) if precision == "fp32" else Plan("derived")
    raise ModelCacheError(
        "the repository has no OpenVINO IR (openvino_model.xml, openvino/), no ONNX file "
        "(onnx/model.onnx) and no safetensors or PyTorch weights",
        NO_MODEL_FILES,
    )


def missing_tool_message(model_id: str, plan: Plan) -> str:
    """What to tell the user when ``plan`` needs a converter this image does not include."""
    return (
        f"{model_id} has no OpenVINO IR (openvino/ folder or openvino_model.xml) and no ONNX file "
        "(onnx/model.onnx), and converting a PyTorch checkpoint needs the converter, which this "
        "add-on image does not include: choose a repository that ships OpenVINO or ONNX files, "
        "or build the image with WITH_CONVERTER=true (see the add-on's documentation)"
    )
