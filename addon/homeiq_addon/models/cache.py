"""The model cache: hub downloads or local folders, converted once, verified at every load.

Layout under ``<data_dir>/models``::

    <role>/<model slug>/<commit>-<precision>/   a finished entry (OpenVINO IR + tokenizer)
        homeiq-manifest.json                    sha256 and size of every file in the entry
    .tmp/<random>/                              builds in progress
    .tmp/download-<role>-<slug>-<commit>/       a download in progress (resumed on the next try)
    ov-cache/                                   OpenVINO's compiled-model cache

Nothing half-written is ever used: an entry is built in ``.tmp`` and renamed into place
only after its manifest is written; at load every file is checked against the manifest,
and a corrupt or partial entry is removed and rebuilt.

What a repository must hold, in the order it is looked for (:mod:`.layouts`):

1. an optimum-intel export (``openvino_model.xml`` or encoder/decoder IR at the root): served
   as it is;
2. a sentence-transformers ``openvino/`` folder: ``openvino_model.xml`` (FP32) and, where
   published, ``openvino_model_qint8_quantized.xml`` (static INT8);
3. ONNX (``onnx/model.onnx``; ``onnx/encoder_model.onnx`` + ``onnx/decoder_model.onnx`` for the
   classifier): converted to an FP32 IR by OpenVINO itself, without torch;
4. a PyTorch checkpoint: converted only where the converter (torch) is installed.

Variants a repository does not publish are made from the FP32 entry with OpenVINO alone, in any
image: static INT8, weight-only INT8 and FP16 weights (the classifier's BF16 and FP16 candidates). The
default image has no torch, so a model it cannot serve (a checkpoint only) fails with a message
that says what to do.

A revision that is a full commit hash is used as it is: a cached entry of that commit is served
without asking the hub anything, so upstream commits never cause a download. A branch or tag
(``main``) is resolved at every start: following it is what the user asked for.
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
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runtime
from .children import ChildProcesses
from .convert import FORMAT, OV_MODEL, precision_label
from .layouts import Plan, available_tools, missing_tool_message, plan_files
from .loaded import INFO_FILE, read_info
from .static_int8 import WEIGHT_STEPS, weight_steps
from .types import (
    CHECKSUM_MISMATCH,
    CONVERSION_FAILED,
    CONVERTER_MISSING,
    DISK_FULL,
    DOWNLOAD_FAILED,
    NOT_FOUND,
    OFFLINE,
    REVISION,
    InvalidModelIdError,
    ModelCacheError,
    Role,
    RoleState,
)
from .word_table import graph_precision

# What built a cache entry (in its manifest): an entry converted by an older converter is
# converted again, so that a fix in convert.py reaches caches built before it.
COPIED = "copy"
CONVERTED = f"convert:{FORMAT}"
_LOGGER = logging.getLogger(__name__)

MANIFEST = "homeiq-manifest.json"
TMP = ".tmp"
DOWNLOAD_PREFIX = "download-"
OV_CACHE = "ov-cache"  # OpenVINO's compiled-model cache (CACHE_DIR)
STALE_BUILD_S = 3600  # a build folder untouched this long was left by a crash
STALE_DOWNLOAD_S = 7 * 24 * 3600  # a download not resumed within a week is dropped
# A hub id: "name" or "owner/name"; letters, digits, "-", "_", "."; no "..", no leading dot.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
HUB_ID = re.compile(rf"^(?:{_HUB_PART}/)?{_HUB_PART}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
CONVERT_TIMEOUT_S = 1800
DOWNLOAD_WORKERS = 4
PROGRESS_POLL_S = 0.5

Progress = Callable[[RoleState, float | None], None]


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
        if not (path / "config.json").exists() and not (path / OV_MODEL).exists():
            raise InvalidModelIdError(f"{model_id!r} has neither config.json nor {OV_MODEL}")
        return ModelSource(model_id, path)
    if ".." in model_id or not HUB_ID.match(model_id):
        raise InvalidModelIdError(
            f"{model_id!r} is not a hub id like 'owner/name' or an absolute path to a model directory"
        )
    return ModelSource(model_id, None)


def check_revision(revision: str) -> str:
    """``revision`` if it is a branch, tag or commit name; InvalidModelIdError otherwise."""
    if not isinstance(revision, str) or ".." in revision or not REVISION.match(revision):
        raise InvalidModelIdError(
            f"{revision!r} is not a revision: use a commit hash (40 hex digits), a branch or a tag"
        )
    return revision


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
    """Check every file of an entry against its manifest; raise ModelCacheError when not intact."""
    try:
        manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
    except (OSError, ValueError, KeyError) as err:
        raise ModelCacheError(f"manifest missing or unreadable in {root.name}") from err
    for rel, expect in files.items():
        path = root / rel
        if not path.is_file():
            raise ModelCacheError(f"{rel} is missing")
        if path.stat().st_size != expect["size"]:
            raise ModelCacheError(f"{rel} has {path.stat().st_size} bytes, expected {expect['size']}")
        if sha256_file(path) != expect["sha256"]:
            raise ModelCacheError(f"{rel} does not match its checksum", CHECKSUM_MISMATCH)
    return manifest


def _weight_steps_to_remake(info: dict[str, Any]) -> tuple[int, int] | None:
    """For a static INT8 entry this add-on made (``convert.derive``) for another kind of CPU than
    this one (the data folder moved, or a version before 2026-12-07 made it with 8-bit weights for
    a CPU whose INT8 kernels saturate them): its largest weight code and this CPU's. None for any
    other entry."""
    if info.get("derived_from") != "fp32" or info.get("precision") != "int8":
        return None
    made, wanted = int(info.get("weight_steps", WEIGHT_STEPS)), weight_steps()
    return None if made == wanted else (made, wanted)


def _tree_bytes(root: Path) -> int:
    """Bytes of every file under ``root``, partial downloads included (they may vanish meanwhile)."""
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.name.endswith((".metadata", ".lock")):
                total += path.stat().st_size
    return total


@dataclass(frozen=True, slots=True)
class _RepoFile:
    size: int | None
    sha256: str | None  # LFS files only: the hub gives no sha256 for small git files


class ModelCache:
    """Fetches, converts, verifies and prunes cache entries. Thread-safe per entry."""

    def __init__(
        self,
        root: Path,
        *,
        hub_endpoint: str | None = None,
        offline: bool = False,
        tools: frozenset[str] | None = None,
    ) -> None:
        """Use ``root`` (``<data_dir>/models``) as the cache; remove stale temporary folders.

        ``tools``: the optional converters to use (default: those installed, see
        :func:`available_tools`).
        """
        self.root = root
        self.hub_endpoint = hub_endpoint
        self.offline = offline
        self.tools = available_tools() if tools is None else tools
        self._convert_lock = threading.Lock()  # conversions are CPU-heavy: one at a time
        # Conversions run in child processes, killed by close() (the server is stopping); the
        # registry runs its precision probes there too.
        self.children = ChildProcesses()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / TMP
        if tmp.is_dir():
            for stale in tmp.iterdir():
                keep_s = STALE_DOWNLOAD_S if stale.name.startswith(DOWNLOAD_PREFIX) else STALE_BUILD_S
                with contextlib.suppress(OSError):
                    if time.time() - stale.stat().st_mtime > keep_s:
                        shutil.rmtree(stale, ignore_errors=True)

    # ---- public API -------------------------------------------------------------------
    def ensure(
        self, role: Role, model_id: str, precision: str, progress: Progress, revision: str = "main"
    ) -> Entry:
        """Return a verified entry for the model at ``revision`` (ignored for local folders),
        downloading and converting it when needed."""
        source = parse_model_id(model_id)
        model_dir = self.root / role.value / source.slug
        if source.local_dir is not None:
            commit = _fingerprint(source.local_dir)
        else:
            commit = self._resolve(source, model_dir, precision, check_revision(revision))
        entry_dir = model_dir / f"{commit}-{precision}"
        if entry_dir.is_dir():
            try:
                manifest, info = verify_entry(entry_dir), read_info(entry_dir)
                built_by = manifest.get("built_by")
                made = info.get("precision") if built_by == CONVERTED else None
                if built_by not in (COPIED, CONVERTED):  # absent: built before
                    _LOGGER.info(
                        "Cached %s model %s was converted by an older version; converting it again",
                        role,
                        model_id,
                    )
                    self._remove(entry_dir)
                elif (steps := _weight_steps_to_remake(info)) is not None:
                    _LOGGER.info(
                        "Cached %s model %s holds static INT8 weights of up to %d where this CPU's "
                        "INT8 kernels take %d; making them again",
                        role,
                        model_id,
                        *steps,
                    )
                    self._remove(entry_dir)
                elif made is not None and made != precision_label(precision):
                    # The classifier's "int8" entries were weight-only INT8 before 2026-12-06.
                    _LOGGER.info(
                        "Cached %s model %s holds %s graphs where %s are made now; making them again",
                        role,
                        model_id,
                        made,
                        precision_label(precision),
                    )
                    self._remove(entry_dir)
                else:
                    return self._entry(entry_dir, source, commit, precision, manifest=manifest, info=info)
            except ModelCacheError as err:
                _LOGGER.warning("Cached %s model %s is damaged (%s); rebuilding it", role, model_id, err)
                self._remove(entry_dir)
        listing = self._listing(source, commit, model_dir)
        plan = plan_files(listing, role, precision)
        if plan.needs is not None and plan.needs not in self.tools:
            raise ModelCacheError(missing_tool_message(model_id, plan), CONVERTER_MISSING)
        base = None
        if plan.kind in ("derived", "reduced"):  # built from the FP32 entry, which is fetched first
            base = self.ensure(role, model_id, "fp32", progress, revision=commit).path
        self._build(
            role=role,
            source=source,
            commit=commit,
            precision=precision,
            plan=plan,
            listing=listing,
            base=base,
            entry_dir=entry_dir,
            progress=progress,
        )
        manifest = verify_entry(entry_dir)
        self.prune_revisions(entry_dir)
        return self._entry(entry_dir, source, commit, precision, manifest=manifest, info=read_info(entry_dir))

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
        self.children.close()

    # ---- internals --------------------------------------------------------------------
    @staticmethod
    def _entry(
        path: Path,
        source: ModelSource,
        revision: str,
        precision: str,
        *,
        manifest: dict[str, Any],
        info: dict[str, Any],
    ) -> Entry:
        size = sum(int(f["size"]) for f in manifest["files"].values())
        return Entry(path, source.model_id, revision, source.kind, precision, size, info)

    def _resolve(self, source: ModelSource, model_dir: Path, precision: str, revision: str) -> str:
        """The commit to use: a commit hash as it is (no request); a branch or tag as the hub
        names it now, or the newest cached commit when the hub cannot be asked."""
        if COMMIT.match(revision):
            return revision
        if not self.offline:
            try:
                sha = self._api().model_info(source.model_id, revision=revision).sha
            except Exception as err:  # network down, hub error: fall back to the cache below
                if _is_not_found(err):
                    raise ModelCacheError(_not_found(source.model_id, revision, err), NOT_FOUND) from err
                cached = self._newest_cached(model_dir, precision)
                if cached is None:
                    raise ModelCacheError(f"cannot reach the model hub: {_short(err)}", OFFLINE) from err
                _LOGGER.warning("Model hub unreachable (%s); using cached %s", _short(err), source.model_id)
                return cached
            if not sha:
                raise ModelCacheError(f"the hub named no commit for {source.model_id}@{revision}", NOT_FOUND)
            return str(sha)
        cached = self._newest_cached(model_dir, precision)
        if cached is None:
            raise ModelCacheError(
                f"{source.model_id} is not in the cache and downloads are off (offline)", OFFLINE
            )
        return cached

    @staticmethod
    def _newest_cached(model_dir: Path, precision: str) -> str | None:
        entries = [p for p in model_dir.glob(f"*-{precision}") if (p / MANIFEST).exists()]
        if not entries:
            return None
        newest = max(entries, key=lambda p: p.stat().st_mtime)
        return newest.name[: -len(precision) - 1]

    def _api(self) -> Any:
        return _hub().HfApi(endpoint=self.hub_endpoint)

    def _listing(self, source: ModelSource, commit: str, model_dir: Path) -> dict[str, _RepoFile]:
        """The files of the source at ``commit``: sizes and (for LFS files) sha256 from the hub, or
        from the manifest of a cached entry of that commit (a commit's files never change)."""
        if source.local_dir is not None:
            return {
                str(p.relative_to(source.local_dir)): _RepoFile(p.stat().st_size, None)
                for p in _files(source.local_dir)
            }
        for manifest in model_dir.glob(f"{commit}-*/{MANIFEST}"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                known = json.loads(manifest.read_text(encoding="utf-8"))["repo_files"]
                return {name: _RepoFile(f["size"], f["sha256"]) for name, f in known.items()}
        if self.offline:
            raise ModelCacheError(
                f"{source.model_id}@{commit[:12]} is not in the cache and downloads are off (offline)",
                OFFLINE,
            )
        try:
            info = self._api().model_info(source.model_id, revision=commit, files_metadata=True)
        except Exception as err:
            if _is_not_found(err):
                raise ModelCacheError(_not_found(source.model_id, commit, err), NOT_FOUND) from err
            raise ModelCacheError(f"cannot reach the model hub: {_short(err)}", OFFLINE) from err
        return {
            s.rfilename: _RepoFile(s.size, s.lfs.sha256 if s.lfs is not None else None)
            for s in info.siblings or []
        }

    def _build(
        self,
        *,
        role: Role,
        source: ModelSource,
        commit: str,
        precision: str,
        plan: Plan,
        listing: dict[str, _RepoFile],
        base: Path | None,
        entry_dir: Path,
        progress: Progress,
    ) -> None:
        work = self.root / TMP / uuid.uuid4().hex
        work.mkdir(parents=True)
        download = None
        try:
            out = work / "entry"
            if base is not None:
                progress(RoleState.CONVERTING, None)
                self._convert(role, base, out, precision, derive=True)
                built_by = CONVERTED
            else:
                if source.local_dir is not None:
                    src = self._stage_local(source.local_dir, plan, work / "source")
                else:
                    download = self._download_dir(role, source, commit)
                    self._download(
                        repo_id=source.model_id,
                        commit=commit,
                        plan=plan,
                        listing=listing,
                        dest=download,
                        progress=progress,
                    )
                    src = _stage(download, plan, work / "source")
                if plan.kind == "openvino" and role is not Role.RERANKER:
                    # A pre-converted OpenVINO model: used as it is.
                    src.rename(out)
                    if not (out / INFO_FILE).exists():  # say what the graphs really are
                        info = {"source_format": "openvino", "precision": _graphs_precision(out)}
                        (out / INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
                    built_by = COPIED
                else:
                    # ONNX and checkpoints are converted; a pre-converted reranker goes through the
                    # converter too, which takes its word table out of the graph (word_table.py).
                    progress(RoleState.CONVERTING, None)
                    self._convert(role, src, out, precision)
                    built_by = CONVERTED
            meta: dict[str, Any] = {
                "model_id": source.model_id,
                "revision": commit,
                "precision": precision,
                "role": role,
                "source_kind": plan.kind,
            }
            if source.local_dir is None:  # the commit's files: other variants plan without the hub
                meta["repo_files"] = {n: {"size": f.size, "sha256": f.sha256} for n, f in listing.items()}
            write_manifest(out, {**meta, "built_by": built_by})
            entry_dir.parent.mkdir(parents=True, exist_ok=True)
            if entry_dir.exists():  # built concurrently by another process: keep the existing one
                return
            out.rename(entry_dir)
            if download is not None:  # done: this download and older ones of the model go
                for old in (self.root / TMP).glob(f"{DOWNLOAD_PREFIX}{role.value}-{source.slug}-*"):
                    shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _download_dir(self, role: Role, source: ModelSource, commit: str) -> Path:
        return self.root / TMP / f"{DOWNLOAD_PREFIX}{role.value}-{source.slug}-{commit}"

    @staticmethod
    def _stage_local(folder: Path, plan: Plan, dest: Path) -> Path:
        """The plan's files of a local folder, under their names in the entry (copied: the user's
        files are never moved or linked). A checkpoint is converted where it lies."""
        if plan.kind == "checkpoint":
            return folder
        dest.mkdir(parents=True)
        for rel, name in plan.files.items():
            shutil.copy2(folder / rel, dest / name)
        return dest

    def _download(
        self,
        *,
        repo_id: str,
        commit: str,
        plan: Plan,
        listing: dict[str, _RepoFile],
        dest: Path,
        progress: Progress,
    ) -> None:
        """The plan's files at ``commit`` into ``dest`` with ``snapshot_download``, then checked
        against the hub's sizes and sha256. ``dest`` survives a broken transfer, so the next try
        resumes it; a file that fails its check is removed with the folder."""
        hub = _hub()
        hub.utils.disable_progress_bars()  # the log shows progress in words, not as tqdm bars
        wanted = sorted(plan.files)
        total = sum(listing[n].size or 0 for n in wanted) or 1
        progress(RoleState.DOWNLOADING, min(1.0, _tree_bytes(dest) / total) if dest.exists() else 0.0)
        done = threading.Event()

        def report() -> None:  # sleeps, not a timed wait: a timed wait never ends under faketime
            while not done.is_set():
                time.sleep(PROGRESS_POLL_S)
                if dest.exists() and not done.is_set():
                    progress(RoleState.DOWNLOADING, min(0.99, _tree_bytes(dest) / total))

        reporter = threading.Thread(target=report, name="homeiq-download-progress", daemon=True)
        reporter.start()
        try:
            hub.snapshot_download(
                repo_id,
                revision=commit,
                allow_patterns=wanted,
                local_dir=dest,
                endpoint=self.hub_endpoint,
                max_workers=DOWNLOAD_WORKERS,
            )
        except Exception as err:  # say which files, in words: the hub client's message often does not
            files = ", ".join(n for n in wanted if not (dest / n).is_file()) or "its files"
            if _is_revision_not_found(err):
                raise ModelCacheError(_not_found(repo_id, commit, err), NOT_FOUND) from err
            if _is_not_found(err):
                message = f"the hub has no {files} in {repo_id}@{commit[:12]} ({_short(err)})"
                raise ModelCacheError(message, NOT_FOUND) from err
            if full := _disk_full(dest if dest.exists() else self.root):
                raise ModelCacheError(f"downloading {files} of {repo_id} failed: {full}", DISK_FULL) from err
            message = f"downloading {files} of {repo_id} failed: {_short(err)}"
            raise ModelCacheError(message, DOWNLOAD_FAILED) from err
        finally:
            done.set()
            reporter.join()
        try:
            for name in wanted:
                _check_download(dest / name, name, listing[name])
        except ModelCacheError:
            shutil.rmtree(dest, ignore_errors=True)  # its metadata would call the bad file complete
            raise
        progress(RoleState.DOWNLOADING, 1.0)

    def _convert(self, role: Role, src: Path, out: Path, precision: str, *, derive: bool = False) -> None:
        args = ["--role", role.value, "--source", str(src), "--output", str(out), "--precision", precision]
        with self._convert_lock:
            started = time.monotonic()
            # Roles queued behind another conversion when the server stopped raise ``stopping``.
            child = self.children.run_module(
                "homeiq_addon.models.convert",
                [*args, *(["--derive"] if derive else [])],
                timeout=CONVERT_TIMEOUT_S,
            )
        if child.timed_out:
            raise ModelCacheError(f"conversion took longer than {CONVERT_TIMEOUT_S} s")
        if child.returncode != 0:
            err = child.stderr
            lines = [ln for ln in err.splitlines() if ln.startswith("conversion failed")] or err.splitlines()
            message = lines[-1] if lines else f"conversion exited with {child.returncode}"
            if child.returncode == -signal.SIGKILL:  # what the kernel's OOM killer sends
                message = "the conversion process was killed (most often: the system ran out of memory)"
            # OpenVINO reports a full disk as "basic_ios::clear: iostream error": say what it is.
            if full := _disk_full(out.parent):
                raise ModelCacheError(f"{message} ({full})", DISK_FULL)
            raise ModelCacheError(message, CONVERSION_FAILED)
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


def _stage(download: Path, plan: Plan, dest: Path) -> Path:
    """The downloaded files under their names in the entry (hard links where the file system
    allows: the download folder is deleted after the build)."""
    dest.mkdir(parents=True)
    for rel, name in plan.files.items():
        try:
            os.link(download / rel, dest / name)
        except OSError:
            shutil.copy2(download / rel, dest / name)
    return dest


def _check_download(path: Path, name: str, expect: _RepoFile) -> None:
    """The size and (for LFS files) sha256 the hub lists for ``name``."""
    if not path.is_file():
        raise ModelCacheError(f"{name} was not downloaded", DOWNLOAD_FAILED)
    size = path.stat().st_size
    if expect.size is not None and size != expect.size:
        raise ModelCacheError(f"{name} is {size} bytes, the hub says {expect.size}", DOWNLOAD_FAILED)
    if expect.sha256 and sha256_file(path) != expect.sha256:
        raise ModelCacheError(f"{name} does not match the hub's sha256 checksum", CHECKSUM_MISMATCH)


def _hub() -> Any:
    """The Hugging Face Hub client, imported where the cache first talks to the hub (a download,
    or resolving a branch to its commit). A start from the cache with the default pinned commits
    never does, and the client's modules (httpx, tqdm, the API) hold ≈14 MB of the server's memory.
    """
    import huggingface_hub  # noqa: PLC0415 - on purpose, see above
    import huggingface_hub.errors  # noqa: PLC0415

    return huggingface_hub


def _is_not_found(err: BaseException) -> bool:
    """A missing repository, revision or file (not a network problem)."""
    errors = _hub().errors
    return isinstance(
        err, errors.RepositoryNotFoundError | errors.RevisionNotFoundError | errors.EntryNotFoundError
    )


def _is_revision_not_found(err: BaseException) -> bool:
    return isinstance(err, _hub().errors.RevisionNotFoundError)


def _not_found(repo_id: str, revision: str, err: BaseException) -> str:
    if _is_revision_not_found(err):
        return (
            f"revision {revision} does not exist in {repo_id}: set the role's revision option to a "
            "commit of that repository (or main)"
        )
    return f"{repo_id} was not found on the hub ({_short(err)})"


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
