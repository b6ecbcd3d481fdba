"""The model cache: hub downloads or local folders, converted once, verified at every load.

Layout under ``<data_dir>/models``::

    <role>/<model slug>/<revision>-<precision>/   a finished entry (OpenVINO IR + tokenizer)
        homeiq-manifest.json                      sha256 and size of every file in the entry
    .tmp/<random>/                                downloads and conversions in progress
    ov-cache/                                     OpenVINO's compiled-model cache

Nothing half-written is ever used: an entry is built in ``.tmp`` and renamed into place
only after its manifest is written; at load every file is checked against the manifest,
and a corrupt or partial entry is removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, hf_hub_download

from . import runtime
from .convert import FORMAT
from .loaded import INFO_FILE
from .types import InvalidModelIdError, Role, RoleState
from .word_table import graph_precision

# What built a cache entry (in its manifest): an entry converted by an older converter is
# converted again, so that a fix in convert.py reaches caches built before it.
COPIED = "copy"
CONVERTED = f"convert:{FORMAT}"
_LOGGER = logging.getLogger(__name__)

MANIFEST = "homeiq-manifest.json"
TMP = ".tmp"
OV_CACHE = "ov-cache"  # OpenVINO's compiled-model cache (CACHE_DIR)
# A hub id: "name" or "owner/name"; letters, digits, "-", "_", "."; no "..", no leading dot.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"^(?:{_HUB_PART}/)?{_HUB_PART}$")
_REVISION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Root-level files worth downloading; weights are chosen separately.
_SMALL_FILES = re.compile(r"^[^/]+\.(json|txt|model)$")
_OV_FILES = re.compile(r"^openvino_[^/]*\.(xml|bin)$")
CONVERT_TIMEOUT_S = 1800

Progress = Callable[[RoleState, float | None], None]


class ModelStoreError(Exception):
    """Download, checksum or conversion failure, with a message for the user."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model comes from: a hub repository or a local folder."""

    model_id: str
    local_dir: Path | None

    @property
    def kind(self) -> str:
        """``hub`` or ``local``."""
        return "local" if self.local_dir is not None else "hub"

    @property
    def slug(self) -> str:
        """A folder name for the cache that cannot escape it."""
        if self.local_dir is None:
            return self.model_id.replace("/", "--")
        digest = hashlib.sha256(str(self.local_dir).encode()).hexdigest()[:12]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", self.local_dir.name) or "model"
        return f"local--{name}--{digest}"


def parse_model_id(model_id: str) -> ModelSource:
    """Validate ``model_id``: an existing local directory (absolute path) or a hub id.

    Raises InvalidModelIdError for anything else (path traversal, URLs, odd characters).
    """
    if not isinstance(model_id, str) or not model_id.strip():
        raise InvalidModelIdError("model id is empty")
    if model_id.startswith(("/", "./", "~")):
        path = Path(model_id).expanduser().resolve()
        if not path.is_dir():
            raise InvalidModelIdError(f"local model directory {model_id!r} does not exist")
        if not (path / "config.json").exists() and not (path / "openvino_model.xml").exists():
            raise InvalidModelIdError(f"{model_id!r} has neither config.json nor openvino_model.xml")
        return ModelSource(model_id, path)
    if ".." in model_id or not HUB_ID.match(model_id):
        raise InvalidModelIdError(
            f"{model_id!r} is not a hub id like 'owner/name' or an absolute path to a model directory"
        )
    return ModelSource(model_id, None)


@dataclass(frozen=True, slots=True)
class Entry:
    """A verified cache entry, ready to load."""

    path: Path
    model_id: str
    revision: str
    source: str
    precision: str
    bytes_on_disk: int
    info: dict[str, Any]


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".cache" not in p.relative_to(root).parts)


def write_manifest(root: Path, meta: dict[str, Any]) -> None:
    """Record size and sha256 of every file under ``root`` (fsynced before the rename)."""
    files = {
        str(p.relative_to(root)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in _files(root)
        if p.name != MANIFEST
    }
    data = {**meta, "files": files, "created": time.time()}
    tmp = root / (MANIFEST + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(root / MANIFEST)


def verify_entry(root: Path) -> dict[str, Any]:
    """Check every file of an entry against its manifest; raise ModelStoreError when not intact."""
    try:
        manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
    except (OSError, ValueError, KeyError) as err:
        raise ModelStoreError(f"manifest missing or unreadable in {root.name}") from err
    for rel, expect in files.items():
        path = root / rel
        if not path.is_file():
            raise ModelStoreError(f"{rel} is missing")
        if path.stat().st_size != expect["size"]:
            raise ModelStoreError(f"{rel} has {path.stat().st_size} bytes, expected {expect['size']}")
        if sha256_file(path) != expect["sha256"]:
            raise ModelStoreError(f"{rel} does not match its checksum")
    return manifest


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in _files(root))


def _is_openvino(names: list[str]) -> bool:
    return "openvino_model.xml" in names or "openvino_encoder_model.xml" in names


def _choose_hub_files(names: list[str]) -> list[str]:
    """Root-level config/tokenizer files plus one set of weights (OpenVINO, safetensors or .bin)."""
    root = [n for n in names if "/" not in n]
    small = [n for n in root if _SMALL_FILES.match(n)]
    if _is_openvino(root):
        return small + [n for n in root if _OV_FILES.match(n)]
    safetensors = [n for n in root if n.endswith(".safetensors")]
    if safetensors:
        return small + safetensors
    bins = [n for n in root if re.match(r"^pytorch_model(-\d+-of-\d+)?\.bin$", n)]
    if bins:
        return small + bins
    raise ModelStoreError("the repository has no safetensors, PyTorch or OpenVINO weights at its root")


class ModelStore:
    """Fetches, converts, verifies and prunes cache entries. Thread-safe per entry."""

    def __init__(self, root: Path, *, hub_endpoint: str | None = None, offline: bool = False) -> None:
        """Use ``root`` (``<data_dir>/models``) as the cache; remove stale temporary folders."""
        self.root = root
        self.hub_endpoint = hub_endpoint
        self.offline = offline
        self._convert_lock = threading.Lock()  # conversions are CPU-heavy: one at a time
        self._children: set[subprocess.Popen[str]] = set()
        self._children_lock = threading.Lock()
        self._closed = False  # set by close(): no new conversion starts (the server is stopping)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / TMP
        if tmp.is_dir():
            for stale in tmp.iterdir():
                if time.time() - stale.stat().st_mtime > 3600:
                    shutil.rmtree(stale, ignore_errors=True)

    # ---- public API -------------------------------------------------------------------
    def ensure(self, role: Role, model_id: str, precision: str, progress: Progress) -> Entry:
        """Return a verified entry for the model, downloading and converting it when needed."""
        source = parse_model_id(model_id)
        model_dir = self.root / role.value / source.slug
        if source.local_dir is not None:
            revision = _fingerprint(source.local_dir)
        else:
            revision = self._hub_revision(source, model_dir, precision)
        entry_dir = model_dir / f"{revision}-{precision}"
        if entry_dir.is_dir():
            try:
                manifest = verify_entry(entry_dir)
                if manifest.get("built_by") not in (
                    COPIED,
                    CONVERTED,
                ):  # absent: built before it was recorded
                    _LOGGER.info(
                        "Cached %s model %s was converted by an older version; converting it again",
                        role,
                        model_id,
                    )
                    self._remove(entry_dir)
                else:
                    return self._entry(entry_dir, source, revision, precision, manifest)
            except ModelStoreError as err:
                _LOGGER.warning("Cached %s model %s is damaged (%s); rebuilding it", role, model_id, err)
                self._remove(entry_dir)
        self._build(
            role=role,
            source=source,
            revision=revision,
            precision=precision,
            entry_dir=entry_dir,
            progress=progress,
        )
        manifest = verify_entry(entry_dir)
        self.prune_revisions(entry_dir)
        return self._entry(entry_dir, source, revision, precision, manifest)

    def prune_revisions(self, keep: Path) -> list[Path]:
        """Remove the other revisions of the same model and precision as ``keep``."""
        suffix = keep.name.rsplit("-", 1)[-1]
        removed = []
        for other in keep.parent.iterdir():
            if other != keep and other.is_dir() and other.name.endswith(f"-{suffix}"):
                self._remove(other)
                removed.append(other)
        return removed

    def prune_unused(self, in_use: set[Path]) -> list[Path]:
        """Remove every entry that is not in ``in_use`` (models no longer configured)."""
        removed = []
        for role in Role:
            for model_dir in (self.root / role.value).glob("*"):
                for entry in model_dir.glob("*"):
                    if entry.is_dir() and entry not in in_use:
                        self._remove(entry)
                        removed.append(entry)
                if model_dir.is_dir() and not any(model_dir.iterdir()):
                    model_dir.rmdir()
        if removed:  # compiled blobs of removed models would linger forever otherwise
            shutil.rmtree(self.root / OV_CACHE, ignore_errors=True)
        return removed

    def exclusive(self) -> contextlib.AbstractContextManager[Any]:
        """Hold off conversions (CPU-heavy) while held: ``precision: auto`` times its probe in it."""
        return self._convert_lock

    def close(self) -> None:
        """Stop conversion child processes still running, and start no new ones."""
        with self._children_lock:
            self._closed = True
            for child in self._children:
                child.kill()

    # ---- internals --------------------------------------------------------------------
    def _entry(
        self, path: Path, source: ModelSource, revision: str, precision: str, manifest: dict[str, Any]
    ) -> Entry:
        info = (
            json.loads((path / INFO_FILE).read_text(encoding="utf-8")) if (path / INFO_FILE).exists() else {}
        )
        size = sum(int(f["size"]) for f in manifest["files"].values())
        return Entry(path, source.model_id, revision, source.kind, precision, size, info)

    def _hub_revision(self, source: ModelSource, model_dir: Path, precision: str) -> str:
        """The commit to use: the hub's current one, or the newest cached one when offline."""
        if not self.offline:
            try:
                return self._api().model_info(source.model_id).sha or "main"
            except Exception as err:  # network down, hub error: fall back to the cache below
                cached = self._newest_cached(model_dir, precision)
                if cached is None:
                    raise ModelStoreError(f"cannot reach the model hub: {_short(err)}") from err
                _LOGGER.warning("Model hub unreachable (%s); using cached %s", _short(err), source.model_id)
                return cached
        cached = self._newest_cached(model_dir, precision)
        if cached is None:
            raise ModelStoreError(f"{source.model_id} is not in the cache and downloads are off (offline)")
        return cached

    @staticmethod
    def _newest_cached(model_dir: Path, precision: str) -> str | None:
        entries = [p for p in model_dir.glob(f"*-{precision}") if (p / MANIFEST).exists()]
        if not entries:
            return None
        newest = max(entries, key=lambda p: p.stat().st_mtime)
        return newest.name[: -len(precision) - 1]

    def _api(self) -> Any:
        return HfApi(endpoint=self.hub_endpoint)

    def _build(
        self,
        *,
        role: Role,
        source: ModelSource,
        revision: str,
        precision: str,
        entry_dir: Path,
        progress: Progress,
    ) -> None:
        work = self.root / TMP / uuid.uuid4().hex
        work.mkdir(parents=True)
        try:
            if source.local_dir is not None:
                src = source.local_dir
            else:
                src = work / "download"
                self._download(source.model_id, revision, src, progress)
            out = work / "entry"
            names = [p.name for p in src.iterdir()]
            if _is_openvino(names) and role is not Role.RERANKER:
                # Pre-converted OpenVINO model: used as it is.
                shutil.copytree(src, out, ignore=shutil.ignore_patterns(".cache"))
                if not (out / INFO_FILE).exists():  # say what the graphs really are
                    info = {"source_format": "openvino", "precision": _graphs_precision(out)}
                    (out / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
                built_by = COPIED
            else:
                # A pre-converted reranker goes through the converter too, which takes its word
                # table out of the graph (see word_table.py); everything else is exported.
                progress(RoleState.CONVERTING, None)
                self._convert(role, src, out, precision)
                built_by = CONVERTED
            meta = {"model_id": source.model_id, "revision": revision, "precision": precision, "role": role}
            write_manifest(out, {**meta, "built_by": built_by})
            entry_dir.parent.mkdir(parents=True, exist_ok=True)
            if entry_dir.exists():  # built concurrently by another process: keep the existing one
                return
            out.rename(entry_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _download(self, repo_id: str, revision: str, dest: Path, progress: Progress) -> None:
        progress(RoleState.DOWNLOADING, 0.0)
        info = self._api().model_info(repo_id, revision=revision, files_metadata=True)
        siblings = {s.rfilename: s for s in info.siblings or []}
        wanted = _choose_hub_files(list(siblings))
        total = sum(siblings[n].size or 0 for n in wanted) or 1
        done = 0
        for name in wanted:
            try:
                path = Path(
                    hf_hub_download(
                        repo_id, name, revision=revision, local_dir=dest, endpoint=self.hub_endpoint
                    )
                )
            except Exception as err:  # name the file: the hub client's own message often does not
                raise ModelStoreError(f"downloading {name} failed: {_short(err)}") from err
            sib = siblings[name]
            if sib.size is not None and path.stat().st_size != sib.size:
                raise ModelStoreError(f"{name} is {path.stat().st_size} bytes, the hub says {sib.size}")
            expected = sib.lfs.sha256 if sib.lfs is not None else None
            if expected and sha256_file(path) != expected:
                raise ModelStoreError(f"{name} does not match the hub's sha256 checksum")
            done += sib.size or 0
            progress(RoleState.DOWNLOADING, min(1.0, done / total))

    def _convert(self, role: Role, src: Path, out: Path, precision: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "homeiq_addon.models.convert",
            "--role",
            role.value,
            "--source",
            str(src),
            "--output",
            str(out),
            "--precision",
            precision,
        ]
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONIOENCODING": "utf-8"}
        addon_root = str(Path(__file__).resolve().parents[2])  # so the child imports this package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (addon_root, env.get("PYTHONPATH")) if p)
        with self._convert_lock:
            started = time.monotonic()
            # Explicit UTF-8 both ways: the child's progress bars print "█", and the locale's
            # encoding in this process is not reliably UTF-8.
            with self._children_lock:
                if self._closed:  # roles queued behind another conversion when the server stopped
                    raise ModelStoreError("the add-on is stopping")
                child = subprocess.Popen(
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    encoding="utf-8",
                    errors="replace",
                    env=env,
                )
                self._children.add(child)
            try:
                _, err = child.communicate(timeout=CONVERT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                raise ModelStoreError(f"conversion took longer than {CONVERT_TIMEOUT_S} s") from None
            finally:
                with self._children_lock:
                    self._children.discard(child)
        if child.returncode != 0:
            lines = [ln for ln in err.splitlines() if ln.startswith("conversion failed")] or err.splitlines()
            message = lines[-1] if lines else f"conversion exited with {child.returncode}"
            # OpenVINO reports a full disk as "basic_ios::clear: iostream error": say what it is.
            if full := _disk_full(out.parent):
                message = f"{message} ({full})"
            raise ModelStoreError(message)
        _LOGGER.info("Converted %s model in %.1f s", role, time.monotonic() - started)

    def _remove(self, path: Path) -> None:
        """Move aside first (atomic), then delete, so a crash never leaves a half-deleted entry."""
        trash = self.root / TMP / f"trash-{uuid.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.rename(trash)
        except OSError:
            trash = path
        shutil.rmtree(trash, ignore_errors=True)


def _graphs_precision(folder: Path) -> str:
    """The precision of a pre-converted folder's graphs, e.g. ``int8-weights`` or ``fp32``."""
    core = runtime.core()
    found = [graph_precision(core.read_model(xml)) for xml in sorted(folder.glob("openvino_*model.xml"))]
    return "+".join(dict.fromkeys(found)) or "unknown"


def _fingerprint(local_dir: Path) -> str:
    """A revision for a local folder: changes whenever a file's name, size or mtime changes."""
    digest = hashlib.sha256()
    for path in _files(local_dir):
        st = path.stat()
        digest.update(f"{path.relative_to(local_dir)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return "local-" + digest.hexdigest()[:16]


def _disk_full(directory: Path) -> str | None:
    """A message when ``directory``'s file system has no room for another MiB, else None."""
    probe = directory / f".space-probe-{uuid.uuid4().hex}"
    try:
        with probe.open("wb") as fh:
            fh.write(b"\0" * (1 << 20))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            free_mb = shutil.disk_usage(directory).free / 1e6
            return f"no space left on device: {free_mb:.1f} MB free in {directory}"
        return None
    finally:
        probe.unlink(missing_ok=True)
    return None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]
