"""The add-on's settings: defaults < ``options.json`` < ``HOMEIQ_*`` environment < CLI flags.

Inside Home Assistant the Supervisor writes the user's options to ``/data/options.json``; as a
plain container (a stronger machine on the LAN) the same image reads ``HOMEIQ_*`` environment
variables; outside Docker the CLI flags cover everything. One entrypoint serves all three.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from homeiq_addon.models.types import Role

if TYPE_CHECKING:
    from homeiq_addon.models.registry import ModelSettings

DEFAULT_MODELS: dict[Role, str] = {
    Role.EMBEDDING: "sentence-transformers/all-MiniLM-L6-v2",
    Role.RERANKER: "BAAI/bge-reranker-base",
    Role.CLASSIFIER: "google/flan-t5-small",
}
PROFILES = ("full", "lite")
PRECISIONS = ("auto", "int8", "fp32")
DEVICES = ("CPU", "GPU", "NPU", "AUTO")
# bashio's level names (the add-on UI offers these) mapped onto Python's logging levels.
LOG_LEVELS: dict[str, str] = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "notice": "INFO",
    "warning": "WARNING",
    "error": "ERROR",
    "fatal": "CRITICAL",
}
ENV_PREFIX = "HOMEIQ_"
TOKEN_FILE_NAME = "token"  # noqa: S105 - a file name, not a secret
OPTIONS_FILE_NAME = "options.json"
DEFAULT_DATA_DIR = Path("/data")  # the add-on's persistent volume


class SettingsError(ValueError):
    """An option has an invalid value; the message names the option and its source."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits: safe defaults for a small home server, reported by /v1/models."""

    max_texts: int = 256  # texts per request (embed, classify; patterns and known in suggest)
    max_chars: int = 2000  # characters per text (queries and documents too)
    max_documents: int = 256  # documents per rerank request
    max_body_bytes: int = 1_048_576  # request body size (1 MiB)


@dataclass(frozen=True, slots=True)
class BatchingOptions:
    """Request coalescing: concurrent same-role requests share one inference batch."""

    max_batch_texts: int = 64  # texts in one coalesced inference batch
    max_wait_ms: float = 5.0  # longest wait for requests already on their way (never for a lone one)
    max_queue: int = 128  # waiting requests per role before answering 503


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``serve``, ``fetch`` and ``info`` need, after merging all sources."""

    host: str = "0.0.0.0"  # noqa: S104 - inside the add-on container the Supervisor network needs it
    port: int = 8765
    data_dir: Path = DEFAULT_DATA_DIR
    profile: str = "full"
    embedding_model: str = DEFAULT_MODELS[Role.EMBEDDING]
    reranker_model: str = DEFAULT_MODELS[Role.RERANKER]
    classifier_model: str = DEFAULT_MODELS[Role.CLASSIFIER]
    precision: str = "auto"
    device: str = "CPU"
    threads: int | None = None  # None: what the container's CPU quota allows
    prefetch: bool = False
    log_level: str = "info"
    token: str | None = field(default=None, repr=False)
    hub_endpoint: str | None = None
    offline: bool = False
    dedupe_threshold: float = 0.9
    limits: Limits = field(default_factory=Limits)
    batching: BatchingOptions = field(default_factory=BatchingOptions)

    @property
    def token_path(self) -> Path:
        """Where the generated API token lives (mode 0600)."""
        return self.data_dir / TOKEN_FILE_NAME

    @property
    def models_dir(self) -> Path:
        """The model cache (``/data/models`` in the add-on; excluded from backups)."""
        return self.data_dir / "models"

    def model_id(self, role: Role) -> str:
        """The configured hub id or local directory for ``role``."""
        return {
            Role.EMBEDDING: self.embedding_model,
            Role.RERANKER: self.reranker_model,
            Role.CLASSIFIER: self.classifier_model,
        }[role]

    def roles(self) -> list[Role]:
        """Roles that need a model of their own in this profile (lite: embeddings only)."""
        return [Role.EMBEDDING] if self.profile == "lite" else list(Role)

    def model_settings(self) -> ModelSettings:
        """The model runtime's view of these settings."""
        # Imported here so that reading options (and `--help`) never loads OpenVINO.
        from homeiq_addon.models.registry import ModelSettings  # noqa: PLC0415

        return ModelSettings(
            data_dir=self.data_dir,
            profile=self.profile,
            embedding_model=self.embedding_model,
            reranker_model=self.reranker_model,
            classifier_model=self.classifier_model,
            precision=self.precision,
            device=self.device,
            threads=self.threads,
            hub_endpoint=self.hub_endpoint,
            offline=self.offline,
        )


def _positive(maximum: int) -> vol.All:
    return vol.All(vol.Coerce(int), vol.Range(min=1, max=maximum))


def _boolean(value: Any) -> bool:
    """Accept JSON booleans and the usual environment spellings."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise vol.Invalid(f"expected true or false, got {value!r}")


def _threads(value: Any) -> int | None:
    """0 or empty means automatic (the cgroup CPU quota decides)."""
    if value is None or value == "":
        return None
    number = int(value)
    if not 0 <= number <= 256:
        raise vol.Invalid("threads must be between 0 (automatic) and 256")
    return number or None


def _device(value: Any) -> str:
    text = str(value).strip().upper()
    if text not in DEVICES:
        raise vol.Invalid(f"device must be one of {', '.join(DEVICES)}")
    return text


def _non_empty(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise vol.Invalid("must not be empty")
    return text


def _path(value: Any) -> Path:
    return Path(_non_empty(value)).expanduser()


def _model_id(value: Any) -> str:
    """A hub id, or a local model directory (made absolute so the cwd no longer matters)."""
    text = _non_empty(value)
    path = Path(text).expanduser()
    return str(path.absolute()) if path.is_dir() else text


# Every option any source may set, with its validator. Keys match config.yaml's schema.
OPTION_VALIDATORS: dict[str, Any] = {
    "host": _non_empty,
    "port": vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
    "data_dir": _path,
    "profile": vol.In(PROFILES),
    "embedding_model": _model_id,
    "reranker_model": _model_id,
    "classifier_model": _model_id,
    "precision": vol.In(PRECISIONS),
    "device": _device,
    "threads": _threads,
    "prefetch": _boolean,
    "log_level": vol.All(str, vol.Lower, vol.In(list(LOG_LEVELS))),
    "token": vol.All(_non_empty, vol.Length(min=16, max=512)),
    "hub_endpoint": vol.Any(None, _non_empty),
    "offline": _boolean,
    "dedupe_threshold": vol.All(vol.Coerce(float), vol.Range(min=0.5, max=1.0)),
    "max_texts": _positive(100_000),
    "max_chars": _positive(1_000_000),
    "max_documents": _positive(100_000),
    "max_body_kb": _positive(1_048_576),
    "max_batch_texts": _positive(4096),
    "max_wait_ms": vol.All(vol.Coerce(float), vol.Range(min=0.0, max=1000.0)),
    "max_queue": _positive(100_000),
}
_LIMIT_KEYS = {"max_texts", "max_chars", "max_documents"}
_BATCHING_KEYS = {"max_batch_texts", "max_wait_ms", "max_queue"}


def _validate(raw: Mapping[str, Any], source: str, *, ignore_unknown: bool) -> dict[str, Any]:
    """Validate one source's options; unknown keys are errors except where noted."""
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        validator = OPTION_VALIDATORS.get(key)
        if validator is None:
            if ignore_unknown:
                continue
            raise SettingsError(f"{source}: unknown option {key!r}")
        if value is None and key not in {"threads", "hub_endpoint"}:
            continue  # an optional option left empty in the add-on UI
        try:
            clean[key] = validator(value)
        except (vol.Invalid, ValueError, TypeError) as err:
            raise SettingsError(f"{source}: option {key!r} = {value!r} is invalid: {err}") from err
    return clean


def read_options_file(path: Path) -> dict[str, Any]:
    """The Supervisor's ``options.json``; an absent file means no options."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise SettingsError(f"cannot read {path}: {err}") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SettingsError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must hold a JSON object")
    return data


def options_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``HOMEIQ_<OPTION>`` variables, e.g. ``HOMEIQ_PROFILE=lite`` or ``HOMEIQ_TOKEN``."""
    options: dict[str, str] = {}
    for key in OPTION_VALIDATORS:
        value = environ.get(ENV_PREFIX + key.upper())
        if value is not None:
            options[key] = value
    return options


def load_settings(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    options_file: Path | None = None,
) -> Settings:
    """Merge every source into :class:`Settings`; later sources win, the CLI wins over all.

    ``cli`` holds only the flags the user actually gave (``None`` values are ignored).
    The options file defaults to ``options.json`` in the data dir (``/data/options.json`` in
    the add-on) or ``HOMEIQ_OPTIONS_FILE``.
    """
    environ = os.environ if environ is None else environ
    cli_options = _validate(
        {k: v for k, v in (cli or {}).items() if v is not None}, "command line", ignore_unknown=False
    )
    env_options = _validate(options_from_env(environ), "environment", ignore_unknown=False)

    data_dir = cli_options.get("data_dir") or env_options.get("data_dir") or DEFAULT_DATA_DIR
    if options_file is None:
        override = environ.get(ENV_PREFIX + "OPTIONS_FILE")
        options_file = Path(override) if override else Path(data_dir) / OPTIONS_FILE_NAME
    # The Supervisor may add keys we don't know yet (newer config.yaml); don't refuse to start.
    file_options = _validate(read_options_file(options_file), str(options_file), ignore_unknown=True)
    file_options.pop("data_dir", None)  # the data dir decides where options.json is read from

    merged: dict[str, Any] = {**file_options, **env_options, **cli_options}
    limits = Limits()
    if "max_body_kb" in merged:
        limits = replace(limits, max_body_bytes=merged.pop("max_body_kb") * 1024)
    limits = replace(limits, **{k: merged.pop(k) for k in _LIMIT_KEYS & merged.keys()})
    batching = replace(BatchingOptions(), **{k: merged.pop(k) for k in _BATCHING_KEYS & merged.keys()})
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in merged.items() if k in known}, limits=limits, batching=batching)
