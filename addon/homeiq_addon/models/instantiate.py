"""A role's model compiled from a cache entry: what the registry serves and the probe times."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from . import runtime
from .classifier import OVClassifier
from .embedder import OVEmbedder
from .loaded import LoadOptions
from .reranker import OVReranker
from .types import Role


def instantiate(
    role: Role, path: Path, model_id: str, options: LoadOptions, *, inference: str, models_root: Path
) -> Any:
    """The model in the entry at ``path``, compiled with ``inference`` as OpenVINO's inference
    precision, with the pages of the model files under ``models_root`` that compiling read given
    back before its first run (for a probe's candidate and a served model alike): the first run
    reads back the few it needs while it grows its own buffers, instead of on top of all of them.
    Measured on the reranker's FP32 model: first-run peak 953 -> 732 MB on AVX-VNNI, 834 -> 684 MB
    on AMX, holding the same afterwards."""
    options = dataclasses.replace(options, inference_precision=inference)
    model: Any
    if role is Role.EMBEDDING:
        model = OVEmbedder(path, model_id, options)
    elif role is Role.RERANKER:
        model = OVReranker(path, model_id, options)
    else:
        model = OVClassifier(path, model_id, options)
    runtime.release_file_pages([models_root])
    return model
