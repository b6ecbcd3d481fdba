"""The model runtime's public vocabulary: roles, states, results and errors.

The HTTP layer (``homeiq_addon.api``) and the suggest pipeline depend only on what is
defined here and on :class:`homeiq_addon.models.registry.ModelRegistry`; they never touch
OpenVINO directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

# A hub revision: a branch, tag or commit ("main", "v1.0", "refs/pr/12", 40 hex digits).
REVISION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$")


class Role(StrEnum):
    """A slot in the model stack."""

    EMBEDDING = "embedding"
    RERANKER = "reranker"
    CLASSIFIER = "classifier"


class RoleState(StrEnum):
    """Where a role is in its life cycle; reported by /health and /v1/models."""

    NOT_LOADED = "not_loaded"
    DOWNLOADING = "downloading"
    CONVERTING = "converting"
    LOADING = "loading"
    READY = "ready"
    ERROR = "error"


CATEGORIES: tuple[str, ...] = ("energy", "security", "comfort", "convenience")
PRIORITIES: tuple[str, ...] = ("high", "medium", "low")


@dataclass(slots=True)
class RoleStatus:
    """What the API reports about one role."""

    role: Role
    model_id: str
    state: RoleState = RoleState.NOT_LOADED
    revision: str | None = None
    precision: str | None = None  # "int8" (static), "int8-weights", "fp16", "fp32", "bf16"
    precision_reason: str | None = None  # with precision auto: why this one, in words
    source: str | None = None  # "hub" or "local"
    bytes_on_disk: int | None = None
    load_seconds: float | None = None
    error: str | None = None
    # With state error: what went wrong, one of the error codes below (for clients that explain it).
    error_code: str | None = None
    progress: float | None = None  # 0..1 while downloading, when known


@dataclass(frozen=True, slots=True)
class Evidence:
    """How often and how reliably a habit was seen (figures of the pattern miner)."""

    occurrences: int | None = None
    support_days: int | None = None  # days on which the habit happened
    eligible_days: int | None = None  # days on which it could have happened (e.g. weekdays)
    coverage: float | None = None  # 0..1: share of eligible days with the habit
    precision: float | None = None  # 0..1: share of the trigger's firings followed by the action


@dataclass(frozen=True, slots=True)
class PatternContext:
    """What the integration knows about a pattern besides its text; every field optional."""

    kind: str | None = None  # time_of_day, sun, sequence, duration, conditional, group, presence
    trigger: str | None = None  # time, sun, state, presence
    domains: tuple[str, ...] = ()  # entity domains of the action targets
    trigger_domains: tuple[str, ...] = ()
    device_classes: tuple[str, ...] = ()
    action: str | None = None  # the target state or service ("on", "off", "locked", "heat")
    targets: int | None = None  # number of entities acted on
    evidence: Evidence | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PatternContext:
        """From a validated request object (lists become tuples, absent fields stay None)."""
        evidence = data.get("evidence")
        return cls(
            kind=data.get("kind"),
            trigger=data.get("trigger"),
            domains=tuple(data.get("domains", ())),
            trigger_domains=tuple(data.get("trigger_domains", ())),
            device_classes=tuple(data.get("device_classes", ())),
            action=data.get("action"),
            targets=data.get("targets"),
            evidence=Evidence(**evidence) if evidence is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Classification:
    """Category and priority of one text, with the probability of every label.

    ``priority_reason`` is a short sentence for the user saying why the priority was chosen.
    """

    category: str
    priority: str
    category_scores: dict[str, float] = field(default_factory=dict)
    priority_scores: dict[str, float] = field(default_factory=dict)
    priority_reason: str = ""


# Why a model could not be fetched, built or loaded: ``code`` of ModelCacheError, ``error_code``
# of a role in /v1/models.
NOT_FOUND = "not_found"  # no such repository, revision or file on the hub
OFFLINE = "offline"  # not cached, and the hub is unreachable or downloads are off
DOWNLOAD_FAILED = "download_failed"  # the transfer broke off
CHECKSUM_MISMATCH = "checksum_mismatch"  # a file is not what the hub says it is
NO_MODEL_FILES = "no_model_files"  # nothing in the repository this add-on can serve
CONVERTER_MISSING = "converter_missing"  # needs torch, which this image does not include
CONVERSION_FAILED = "conversion_failed"
DISK_FULL = "disk_full"
STOPPING = "stopping"  # the add-on stopped while the model was being made
LOAD_FAILED = "load_failed"  # fetched, but OpenVINO could not compile or run it


class ModelCacheError(Exception):
    """Download, checksum or conversion failure, with a message for the user and a code."""

    def __init__(self, message: str, code: str = CONVERSION_FAILED) -> None:
        """``code`` is one of the error codes above (machine-readable, for the integration)."""
        super().__init__(message)
        self.code = code


class ModelNotReadyError(Exception):
    """The role is still downloading, converting or loading: retry later (HTTP 503)."""

    def __init__(self, role: Role, state: RoleState, retry_after_s: int = 5) -> None:
        super().__init__(f"{role} model is {state}; retry in {retry_after_s} s")
        self.role = role
        self.state = state
        self.retry_after_s = retry_after_s


class ModelLoadError(Exception):
    """The role failed to download, convert or load; the message says why."""

    def __init__(self, role: Role, message: str) -> None:
        super().__init__(f"{role} model failed: {message}")
        self.role = role
        self.message = message


class InvalidModelIdError(ValueError):
    """A model id is neither a valid hub id nor an existing local directory."""


FloatArray = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Sentence embeddings: masked mean pooling, L2-normalised."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Return an array of shape (len(texts), dim). Blocking: call from an executor."""
        ...


class Reranker(Protocol):
    """Cross-encoder relevance of documents to a query (sigmoid scores in 0..1)."""

    model_id: str

    def score(self, query: str, documents: Sequence[str]) -> FloatArray:
        """Return one score per document, in input order. Blocking."""
        ...


class Classifier(Protocol):
    """Category and priority of pattern texts, with the pattern's context where it is known."""

    model_id: str

    def classify(
        self, texts: Sequence[str], contexts: Sequence[PatternContext | None] | None = None
    ) -> list[Classification]:
        """Return one classification per text, in input order. Blocking."""
        ...
