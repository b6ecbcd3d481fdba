"""The add-on's settings: defaults < ``options.json`` < ``HOMEIQ_*`` environment < CLI flags.

Inside Home Assistant the Supervisor writes the user's options to ``/data/options.json``; as a
plain container (a stronger machine on the LAN) the same image reads ``HOMEIQ_*`` environment
variables; outside Docker the CLI flags cover everything. One entrypoint serves all three.

Each option is declared once, as a field of :class:`Settings` (or of its ``limits`` and
``batching`` parts) made with :func:`option`. Its key in ``options.json``, its ``HOMEIQ_<NAME>``
variable, its ``--<name>`` flag and its validator come from that declaration (:data:`OPTIONS`);
a test checks config.yaml's ``options``, ``schema`` and translations against it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from homeiq_addon.models.types import REVISION, Role

# Repositories that ship what the default (torch-free) image serves: an OpenVINO IR folder
# (openvino/, FP32 and static INT8) for the embedder, ONNX graphs for the other two
# (Xenova/flan-t5-small is google/flan-t5-small exported to ONNX by transformers.js).
DEFAULT_MODELS: dict[Role, str] = {
    Role.EMBEDDING: "sentence-transformers/all-MiniLM-L6-v2",
    Role.RERANKER: "BAAI/bge-reranker-base",
    Role.CLASSIFIER: "Xenova/flan-t5-small",
}
# The commit of each default model the add-on serves: upstream commits never cause a download.
DEFAULT_REVISIONS: dict[Role, str] = {
    Role.EMBEDDING: "c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
    Role.RERANKER: "d27e7d37aa3bd7bf26cad7612c93bee9b97f8193",
    Role.CLASSIFIER: "eb11a08e4f61363b60800ae1389aee114933ab39",
}
# The roles that get a model of their own; in the lite profile the embedding model serves all.
PROFILES: dict[str, tuple[Role, ...]] = {"full": tuple(Role), "lite": (Role.EMBEDDING,)}
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
class Option:
    """One option: ``name`` is its key in options.json and config.yaml, ``HOMEIQ_<NAME>`` its
    environment variable and ``--<name>`` (dashes for underscores) its flag."""

    name: str
    default: Any
    help: str  # one line for ``--help``; the add-on UI's text is in translations/en.yaml
    kind: type[Any]  # bool, int, float, str or Path
    section: str = ""  # "" for Settings itself, else the Settings field holding it (limits, batching)
    minimum: int | float | None = None  # numbers: the smallest value; text: the shortest length
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    convert: Callable[[str], Any] | None = None  # applied to text before ``choices`` is checked
    in_addon: bool = True  # offered by config.yaml (and translated); else environment and CLI only
    optional: bool = False  # config.yaml: "?" in the schema and no entry under options

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``HOMEIQ_MAX_TEXTS``."""
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--max-texts``."""
        return "--" + self.name.replace("_", "-")

    @property
    def schema_element(self) -> str:
        """The option's type in config.yaml's ``schema`` (the Supervisor's syntax)."""
        if self.choices:
            element = f"list({'|'.join(self.choices)})"
        elif self.kind is bool:
            element = "bool"
        else:
            name = {int: "int", float: "float"}.get(self.kind, "str")
            bounds = (self.minimum, self.maximum)
            element = name if bounds == (None, None) else f"{name}({_text(bounds[0])},{_text(bounds[1])})"
        return element + ("?" if self.optional else "")

    def validate(self, value: Any) -> Any:
        """The value in its Python type; ValueError (naming the allowed values) when invalid."""
        if self.kind is bool:
            return _boolean(value)
        if self.kind in (int, float):
            if isinstance(value, bool):
                raise ValueError("expected a number, not true or false")
            number = self.kind(value)
            if not self._within(number):
                raise ValueError(f"must be between {_text(self.minimum)} and {_text(self.maximum)}")
            return number
        text = str(value).strip()
        if not text:
            raise ValueError("must not be empty")
        if not self._within(len(text)):
            raise ValueError(f"must have {_text(self.minimum)} to {_text(self.maximum)} characters")
        converted = self.convert(text) if self.convert else text
        if self.choices and converted not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        return Path(converted).expanduser() if self.kind is Path else converted

    def _within(self, number: float) -> bool:
        return (self.minimum is None or number >= self.minimum) and (
            self.maximum is None or number <= self.maximum
        )


def option(default: Any, help: str, *, secret: bool = False, **spec: Any) -> Any:
    """A settings field that is also an option; ``spec`` holds :class:`Option`'s other fields.

    Its kind is the default's type (a default of None means text). A secret stays out of repr().
    """
    kind = str if default is None else Path if isinstance(default, Path) else type(default)
    metadata = {"option": {"default": default, "help": help, "kind": kind, **spec}}
    return field(default=default, repr=not secret, metadata=metadata)


def _text(number: float | None) -> str:
    return "" if number is None else str(number)


def _boolean(value: Any) -> bool:
    """Accept JSON booleans and the usual environment spellings."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _revision(text: str) -> str:
    """A commit hash, branch or tag of a hub repository (``main``, ``refs/pr/3``, 40 hex digits)."""
    if ".." in text or not REVISION.match(text):
        raise ValueError("use a commit hash (40 hex digits), a branch or a tag")
    return text


def _model_id(text: str) -> str:
    """A hub id, or a local model directory (made absolute so the cwd no longer matters)."""
    path = Path(text).expanduser()
    return str(path.absolute()) if path.is_dir() else text


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits: safe defaults for a small home server, reported by /v1/models."""

    max_texts: int = option(
        256, "texts per request (embed, classify; patterns and known in suggest)", minimum=1, maximum=4096
    )
    max_chars: int = option(
        2000, "characters per text (queries and documents too)", minimum=100, maximum=20000
    )
    max_documents: int = option(256, "documents per rerank request", minimum=1, maximum=4096)
    max_body_kb: int = option(1024, "request body size limit in KiB", minimum=64, maximum=65536)

    @property
    def max_body_bytes(self) -> int:
        """The body size limit in bytes."""
        return self.max_body_kb * 1024


@dataclass(frozen=True, slots=True)
class BatchingOptions:
    """Request coalescing: concurrent same-role requests share one inference batch."""

    max_batch_texts: int = option(
        64, "texts per coalesced inference batch", minimum=1, maximum=4096, in_addon=False
    )
    max_wait_ms: float = option(
        5.0,
        "longest wait for requests already on their way (never for a lone one)",
        minimum=0.0,
        maximum=1000.0,
        in_addon=False,
    )
    max_queue: int = option(
        128, "waiting requests per role before answering 503", minimum=1, maximum=100_000, in_addon=False
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``serve``, ``fetch``, ``info`` and the model registry need, all sources merged."""

    # Where and how the server runs: flags and environment only (the Supervisor fixes these).
    host: str = option("0.0.0.0", "address to listen on", in_addon=False)  # noqa: S104 - the add-on network
    port: int = option(8765, "port to listen on", minimum=1, maximum=65535, in_addon=False)
    data_dir: Path = option(  # noqa: RUF009 - option() is a field(); a Path is immutable
        DEFAULT_DATA_DIR, "model cache, token and options.json live here", in_addon=False
    )
    token: str | None = option(
        None,
        "API token (default: generated once, stored in the data dir)",
        minimum=16,
        maximum=512,
        in_addon=False,
        secret=True,
    )
    hub_endpoint: str | None = option(None, "model hub URL (mirrors, tests)", in_addon=False)
    offline: bool = option(False, "never contact the model hub", in_addon=False)
    # The add-on's options (config.yaml).
    profile: str = option("full", "full: three models; lite: embeddings only", choices=tuple(PROFILES))
    embedding_model: str = option(
        DEFAULT_MODELS[Role.EMBEDDING], "hub id or local directory", convert=_model_id
    )
    reranker_model: str = option(
        DEFAULT_MODELS[Role.RERANKER], "hub id or local directory", convert=_model_id
    )
    classifier_model: str = option(
        DEFAULT_MODELS[Role.CLASSIFIER], "hub id or local directory", convert=_model_id
    )
    embedding_revision: str = option(
        DEFAULT_REVISIONS[Role.EMBEDDING], "commit (or branch) of the embedding model", convert=_revision
    )
    reranker_revision: str = option(
        DEFAULT_REVISIONS[Role.RERANKER], "commit (or branch) of the reranker model", convert=_revision
    )
    classifier_revision: str = option(
        DEFAULT_REVISIONS[Role.CLASSIFIER], "commit (or branch) of the classifier model", convert=_revision
    )
    precision: str = option("auto", "auto: the fastest measured on this CPU", choices=PRECISIONS)
    device: str = option("CPU", "OpenVINO device; falls back to CPU", choices=DEVICES, convert=str.upper)
    threads: int = option(0, "inference threads (0: what the CPU quota allows)", minimum=0, maximum=64)
    prefetch: bool = option(False, "fetch and load every model at start")
    log_level: str = option("info", "how much the log tells", choices=tuple(LOG_LEVELS), convert=str.lower)
    dedupe_threshold: float = option(
        0.9, "cosine similarity that marks a duplicate", minimum=0.5, maximum=1.0, optional=True
    )
    limits: Limits = field(default_factory=Limits)
    batching: BatchingOptions = field(default_factory=BatchingOptions)

    @property
    def token_path(self) -> Path:
        """Where the generated API token lives (mode 0600)."""
        return self.data_dir / TOKEN_FILE_NAME

    def model_id(self, role: Role) -> str:
        """The configured hub id or local directory for ``role`` (``<role>_model``)."""
        return str(getattr(self, f"{role.value}_model"))

    def model_revision(self, role: Role) -> str:
        """The configured commit, branch or tag of ``role``'s hub model (``<role>_revision``;
        unused for a directory)."""
        return str(getattr(self, f"{role.value}_revision"))

    def roles(self) -> list[Role]:
        """Roles that need a model of their own in this profile (lite: embeddings only)."""
        return list(PROFILES[self.profile])

    def serving_roles(self, requested: Iterable[Role]) -> list[Role]:
        """The roles whose models answer ``requested``: in lite the embedding model serves all."""
        own = PROFILES[self.profile]
        return list(dict.fromkeys(role if role in own else Role.EMBEDDING for role in requested))


_SECTIONS: dict[str, type[Any]] = {"": Settings, "limits": Limits, "batching": BatchingOptions}
# Every option any source may set, by name; keys match config.yaml's schema.
OPTIONS: dict[str, Option] = {
    f.name: Option(name=f.name, section=section, **f.metadata["option"])
    for section, cls in _SECTIONS.items()
    for f in fields(cls)
    if "option" in f.metadata
}


def _validate(raw: Mapping[str, Any], source: str, *, ignore_unknown: bool) -> dict[str, Any]:
    """Validate one source's options; unknown keys are errors except where noted."""
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        spec = OPTIONS.get(key)
        if spec is None:
            if ignore_unknown:
                continue
            raise SettingsError(f"{source}: unknown option {key!r}")
        if value is None:
            continue  # an optional option left empty in the add-on UI keeps its default
        try:
            clean[key] = spec.validate(value)
        except (ValueError, TypeError) as err:
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
    return {spec.name: environ[spec.env] for spec in OPTIONS.values() if spec.env in environ}


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
    by_section: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for key, value in merged.items():
        by_section[OPTIONS[key].section][key] = value
    parts = {section: _SECTIONS[section](**values) for section, values in by_section.items() if section}
    return Settings(**by_section[""], **parts)
