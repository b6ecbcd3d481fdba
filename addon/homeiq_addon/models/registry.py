"""The model registry: per-role state machine, lazy loading, prefetch and the inference thread.

States: not_loaded -> downloading -> converting -> loading -> ready, or error (with the
reason). Each role loads in its own background thread, so a role that fails never takes the
others down; ``start_loading`` on a role in error retries, and the store rebuilds a
damaged cache entry on that attempt. All inference runs on ``executor`` (one worker): one
inference at a time, using every core the container allows.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from homeiq_addon.settings import PRECISIONS, PROFILES, Settings

from . import precision as precisions, runtime
from .cache import OV_CACHE, Entry, ModelCache, parse_model_id
from .instantiate import instantiate
from .lite import CosineReranker, ExemplarClassifier
from .loaded import LoadOptions
from .probe_process import ProbeInChild
from .types import (
    CONVERSION_FAILED,
    CONVERTER_MISSING,
    LOAD_FAILED,
    Classifier,
    Embedder,
    ModelCacheError,
    ModelLoadError,
    ModelNotReadyError,
    Reranker,
    Role,
    RoleState,
    RoleStatus,
)

_LOGGER = logging.getLogger(__name__)
RETRY_AFTER_S = {RoleState.DOWNLOADING: 10, RoleState.CONVERTING: 15, RoleState.LOADING: 2}


def _short_name(model_id: str) -> str:
    """The name people know a model by: the hub repo name, or a local folder's name (its parent's
    when the folder is just called "model", as in packages that ship one)."""
    parts = [p for p in model_id.rstrip("/").split("/") if p]
    if len(parts) > 1 and parts[-1] in {"model", "models"}:
        return parts[-2]
    return parts[-1] if parts else model_id


class ModelRegistry:
    """Owns the loaded models of one profile and the single inference thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        cpu: precisions.CpuIdentity | None = None,
    ) -> None:
        """Validate the settings; nothing is downloaded or loaded until asked.

        ``cpu`` is the CPU ``precision: auto`` measures on (tests inject one).
        """
        if settings.profile not in PROFILES:
            raise ValueError(f"unknown profile {settings.profile!r}; use one of {', '.join(PROFILES)}")
        if settings.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {settings.precision!r}; use one of {', '.join(PRECISIONS)}")
        self.settings = settings
        self.roles = settings.roles()
        for role in self.roles:
            parse_model_id(settings.model_id(role))  # InvalidModelIdError early, not on first use
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="homeiq-infer"
        )
        self._cache = ModelCache(
            settings.data_dir / "models", hub_endpoint=settings.hub_endpoint, offline=settings.offline
        )
        self._device = runtime.pick_device(settings.device)
        # A sample request warms each role on the inference thread once it is ready (see _load).
        self._options = LoadOptions(
            device=self._device,
            threads=runtime.allowed_threads(settings.threads),
            cache_dir=settings.data_dir / "models" / OV_CACHE,
            warm=False,
        )
        self._cpu = cpu or precisions.cpu_identity(threads=self._options.threads)
        self._choices = precisions.PrecisionChoices(settings.data_dir / "models" / precisions.CHOICES_FILE)
        self._lock = threading.Lock()
        self._status = {role: RoleStatus(role=role, model_id=settings.model_id(role)) for role in self.roles}
        if settings.precision == "auto":  # what an earlier start measured here (`info` shows it)
            for role, status in self._status.items():
                if known := self._choices.get(role, status.model_id, self._cpu):
                    status.precision, status.precision_reason = known.chosen, known.reason
        self._models: dict[Role, Any] = {}
        self._entries: dict[Role, Entry] = {}
        self._threads: dict[Role, threading.Thread] = {}
        # Roles still checking (hashing) their cached files: a precision probe is timed only once
        # none is, as hashing the reranker's files (1-2 s of a core) beside the embedder's probe
        # made it choose the slower precision. A role that downloads or converts stops counting
        # (a probe must not wait for a download; conversions are held off by the cache's lock).
        self._checking: set[Role] = set()
        # Roles ready to be measured (their candidates converted), with the size of the FP32 model
        # each probe loads first: timed one at a time, the largest first (see _quiet).
        self._to_probe: dict[Role, int] = {}
        # The roles started that are still to be measured (or are), the role whose probe runs,
        # and the roles loading (and warming) the model they serve: no model loads beside a probe,
        # nor before every probe of the start has run, so each probe holds only its own
        # candidates. Loading the reranker beside the classifier's probe stacked both on the first
        # start's peak (the default image's on an AMX Xeon: 1,286 MB); loading each chosen model
        # before the next probe still put the reranker's FP32 reference beside the other two
        # models (the default image on AVX-VNNI: 1,156 MB; a start measuring the reranker again
        # on AMX: 1,026 MB).
        self._unprobed: set[Role] = set()
        self._probing: Role | None = None
        self._loading: set[Role] = set()
        self._checks = threading.Condition()
        self._lite: dict[Role, Any] = {}
        self._closed = False
        self._prune_pending = False  # set by prune_when_ready(): prune once every role is ready

    # ---- status -----------------------------------------------------------------------
    def status(self) -> dict[Role, RoleStatus]:
        """A thread-safe snapshot of every role of the profile."""
        with self._lock:
            return {role: dataclasses.replace(s) for role, s in self._status.items()}

    # ---- loading ----------------------------------------------------------------------
    def start_loading(self, roles: Iterable[Role]) -> None:
        """Fetch, convert and load ``roles`` in the background (non-blocking).

        Roles already loading or ready are left alone; a role in error is retried. In the
        lite profile every role maps to the embedding model.
        """
        wanted = self.settings.serving_roles(Role(r) for r in roles)
        with self._lock:
            if self._closed:
                return
            for role in wanted:
                state = self._status[role].state
                if state not in (RoleState.NOT_LOADED, RoleState.ERROR):
                    continue
                self._set(role, state=RoleState.LOADING, error=None, error_code=None, progress=None)
                with self._checks:
                    self._checking.add(role)
                    if self._will_probe(role):
                        self._unprobed.add(role)
                thread = threading.Thread(
                    target=self._load, args=(role,), name=f"homeiq-load-{role}", daemon=True
                )
                self._threads[role] = thread
                thread.start()

    def _will_probe(self, role: Role) -> bool:
        """Whether ``role``'s load measures which precision to serve (``auto`` without a stored
        decision for this CPU, or after a busy probe)."""
        if self.settings.precision != "auto":
            return False
        return precisions.needs_probe(self._choices.get(role, self.settings.model_id(role), self._cpu))

    def wait(self, roles: Iterable[Role] | None = None, timeout: float | None = None) -> None:
        """Block until the given roles (default: all) finished loading, successfully or not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for role in roles or self.roles:
            thread = self._threads.get(role)
            if thread is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _set(self, role: Role, **changes: Any) -> None:
        status = self._status[role]
        for key, value in changes.items():
            setattr(status, key, value)

    def _progress(self, role: Role) -> Callable[[RoleState, float | None], None]:
        def report(state: RoleState, progress: float | None) -> None:
            if state in (RoleState.DOWNLOADING, RoleState.CONVERTING):
                self._checked(role)
            with self._lock:
                if self._status[role].state != state:
                    name = _short_name(self._status[role].model_id)
                    _LOGGER.info(
                        "%s model %s: %s", role.value.capitalize(), name, state.value.replace("_", " ")
                    )
                self._set(role, state=state, progress=progress)

        return report

    def _load(self, role: Role) -> None:
        try:
            self._load_role(role)
        finally:  # whatever failed: the other roles never wait for this one
            self._end_probe(role)
            self._end_load(role)

    def _load_role(self, role: Role) -> None:
        model_id = self.settings.model_id(role)
        precision = self.settings.precision
        name = _short_name(model_id)
        started = time.monotonic()
        try:
            try:
                entry, served, reason = self._choose_entry(role, model_id)
            finally:
                self._checked(role)
                self._end_probe(role)
            with self._lock:
                self._set(role, state=RoleState.LOADING, progress=None, revision=entry.revision)
            self._begin_load(role)
            _LOGGER.info(
                "Loading %s model %s (%s, %d MB) …",
                role.value,
                name,
                (served.name if served else entry.info.get("precision", precision)).upper(),
                entry.bytes_on_disk // 1_000_000,
            )
            load_started = time.monotonic()
            model = self._instantiate(role, entry, served.inference if served else "f32")
            load_s = time.monotonic() - load_started
        except Exception as err:  # any failure becomes this role's error state, never a crash
            message = str(err) or type(err).__name__
            code = err.code if isinstance(err, ModelCacheError) else LOAD_FAILED
            _LOGGER.error("%s model %s failed: %s", role.value.capitalize(), name, message)
            with self._lock:
                self._set(role, state=RoleState.ERROR, error=message, error_code=code, progress=None)
            return
        with self._lock:
            if self._closed:
                return
            self._models[role] = model
            self._entries[role] = entry
            self._lite.clear()
            self._set(
                role,
                state=RoleState.READY,
                revision=entry.revision,
                precision=served.name if served else str(entry.info.get("precision", precision)),
                precision_reason=reason,
                source=entry.source,
                bytes_on_disk=entry.bytes_on_disk,
                load_seconds=round(load_s, 3),
                error=None,
                error_code=None,
                progress=None,
            )
        _LOGGER.info(
            "%s model %s ready in %.1f s (%.1f s in total)",
            role.value.capitalize(),
            name,
            load_s,
            time.monotonic() - started,
        )
        # Queued on the single inference thread, so requests never run beside it; a shut-down
        # executor (closing) refuses it with RuntimeError.
        with contextlib.suppress(RuntimeError):
            warming = self.executor.submit(self._warm, role, model)
            with contextlib.suppress(concurrent.futures.CancelledError):
                warming.result()  # a probe waits for the memory loading took to be handed back
        self._prune_if_ready()

    def _checked(self, role: Role) -> None:
        """``role`` has checked its cached files (or downloads, converts, or failed): probes need
        not wait for it any more."""
        with self._checks:
            self._checking.discard(role)
            self._checks.notify_all()

    @contextlib.contextmanager
    def _quiet(self, role: Role) -> Iterator[None]:
        """Where ``role``'s precision probe is timed: once no role is checking its cached files,
        no other probe runs and no model loads, with conversions held off. No other probe or load
        starts until the probe is over (:meth:`_end_probe`).

        Once every role still to be measured is ready to be, the one whose FP32 model is largest
        goes first, while the process holds the least: the reranker's FP32 reference alone takes
        ~900 MB on an AVX-VNNI CPU, ~100 MB more after the other two probes."""
        order = list(Role)

        def first() -> Role:
            return max(self._to_probe, key=lambda r: (self._to_probe[r], -order.index(r)))

        with self._checks:
            self._checks.wait_for(
                lambda: (
                    not self._checking
                    and self._probing is None
                    and not self._loading
                    and self._unprobed <= self._to_probe.keys()
                    and role == first()
                )
            )
            del self._to_probe[role]
            self._probing = role
        with self._cache.exclusive():
            yield

    def _end_probe(self, role: Role) -> None:
        """``role`` knows which precision it serves (measured or read back), or failed."""
        with self._checks:
            self._unprobed.discard(role)
            self._to_probe.pop(role, None)
            if self._probing is role:
                self._probing = None
            self._checks.notify_all()

    def _begin_load(self, role: Role) -> None:
        """Wait until every role started has been measured (none is left to probe and no probe
        runs), then count ``role`` as loading."""
        with self._checks:
            if waiting := [r.value for r in Role if r in self._unprobed or r is self._probing]:
                _LOGGER.info(
                    "Loading the %s model after measuring the precision of the %s model%s (no model "
                    "loads beside a precision probe)",
                    role.value,
                    " and ".join(waiting),
                    "s" if len(waiting) > 1 else "",
                )
            self._checks.wait_for(lambda: not self._unprobed and self._probing is None)
            self._loading.add(role)

    def _end_load(self, role: Role) -> None:
        """``role``'s model is loaded and warmed (or failed to load)."""
        with self._checks:
            if role in self._loading:
                self._loading.discard(role)
                self._checks.notify_all()

    def _warm(self, role: Role, model: Any) -> None:
        started = time.monotonic()
        try:
            model.warm()
        except Exception as err:  # warming is an optimisation; a failure shows up on real use
            _LOGGER.warning("Warming the %s model failed: %s", role.value, err)
            return
        # The sample request ran the model's first shape, which gave back the pages of the model
        # files it mapped and the heap that loading used and freed (BucketedModel._inference).
        _LOGGER.info(
            "%s model warmed up by a sample request in %.1f s; add-on memory %d MB",
            role.value.capitalize(),
            time.monotonic() - started,
            runtime.resident_bytes() // 1_000_000,
        )

    def _choose_entry(
        self, role: Role, model_id: str
    ) -> tuple[Entry, precisions.Candidate | None, str | None]:
        """The cache entry to serve, and with ``precision: auto`` the candidate chosen for this
        CPU and why (measured at the first load and after a change of CPU, else read back)."""
        progress = self._progress(role)
        revision = self.settings.model_revision(role)
        if self.settings.precision != "auto":
            entry = self._cache.ensure(role, model_id, self.settings.precision, progress, revision)
            return entry, None, None
        entries: dict[str, Entry] = {}

        def entry_of(candidate: precisions.Candidate) -> Entry:
            if candidate.ir not in entries:  # converted only when the probe (or the choice) needs it
                entries[candidate.ir] = self._cache.ensure(role, model_id, candidate.ir, progress, revision)
            return entries[candidate.ir]

        def probe() -> precisions.ProbeProcess:
            tried = precisions.candidates(role, self._cpu)
            unmade: dict[str, str] = {}  # by IR: why it could not be made (tried once)
            for candidate in tried:
                if candidate.ir in unmade:
                    continue
                try:
                    entry_of(candidate)  # convert first: the timing must not run beside a conversion
                except ModelCacheError as err:
                    if not _left_out(candidate, err):
                        raise
                    _LOGGER.warning("Could not try %s for the %s model: %s", candidate, role.value, err)
                    unmade[candidate.ir] = runtime.error_text(err)
            self._checked(role)  # before waiting for the other roles' checks
            reference_bytes = entry_of(precisions.FP32).bytes_on_disk
            with self._checks:  # ready to be measured (_quiet)
                self._to_probe[role] = reference_bytes
                self._checks.notify_all()
            _LOGGER.info(
                "Measuring which precision of the %s model is fastest on this CPU (%s, %s; %s) …",
                role.value,
                self._cpu.model,
                self._cpu.describe(),
                self._cpu.threads_text,
            )
            made = {c.name: entries[c.ir] for c in tried if c.ir in entries}
            return ProbeInChild(
                role,
                entries={name: (entry.path, entry.model_id) for name, entry in made.items()},
                left_out={c.name: unmade[c.ir] for c in tried if c.ir in unmade},
                options=self._options,
                models_root=self._cache.root,
                children=self._cache.children,
            )

        decision, measured = precisions.choose(
            role,
            model_id,
            self._cpu,
            self._choices,
            probe,
            exclusive=functools.partial(self._quiet, role),
        )
        chosen = precisions.candidate_for(role, decision.chosen)
        _LOGGER.info(
            "%s model %s: %s%s",
            role.value.capitalize(),
            _short_name(model_id),
            decision.reason,
            "" if measured else " (measured earlier on this CPU)",
        )
        return entry_of(chosen), chosen, decision.reason

    def _instantiate(self, role: Role, entry: Entry, inference: str = "f32") -> Any:
        """``entry``'s model, compiled (:func:`.instantiate.instantiate`)."""
        return instantiate(
            role, entry.path, entry.model_id, self._options, inference=inference, models_root=self._cache.root
        )

    # ---- access -----------------------------------------------------------------------
    def _get(self, role: Role) -> Any:
        with self._lock:
            status = self._status[role]
            if status.state is RoleState.READY:
                return self._models[role]
            if status.state is RoleState.ERROR:
                raise ModelLoadError(role, status.error or "unknown error")
            state = status.state
        if state is RoleState.NOT_LOADED:
            self.start_loading([role])
        raise ModelNotReadyError(role, state, RETRY_AFTER_S.get(state, 5))

    def get_embedder(self) -> Embedder:
        """The embedding model; ModelNotReadyError while loading, ModelLoadError on failure."""
        model: Embedder = self._get(Role.EMBEDDING)
        return model

    def get_reranker(self) -> Reranker:
        """The reranker (in the lite profile: cosine similarity over the embedder)."""
        if Role.RERANKER not in self.roles:
            return self._lite_model(Role.RERANKER)  # type: ignore[no-any-return]
        model: Reranker = self._get(Role.RERANKER)
        return model

    def get_classifier(self) -> Classifier:
        """The classifier (in the lite profile: nearest labelled exemplars over the embedder)."""
        if Role.CLASSIFIER not in self.roles:
            return self._lite_model(Role.CLASSIFIER)  # type: ignore[no-any-return]
        model: Classifier = self._get(Role.CLASSIFIER)
        return model

    def _lite_model(self, role: Role) -> Any:
        embedder = self.get_embedder()
        with self._lock:
            if role not in self._lite:
                self._lite[role] = (
                    CosineReranker(embedder) if role is Role.RERANKER else ExemplarClassifier(embedder)
                )
            return self._lite[role]

    # ---- cache ------------------------------------------------------------------------
    def prune_when_ready(self) -> None:
        """Once every role of the profile is ready, remove the cached models no longer configured.

        Ready roles prove the configuration works: a mistyped model id or a model that fails to
        load never costs the models it replaced. Every revision and precision of a configured
        model stays, and so does each entry a role serves; the log says what went and how much
        space that freed.
        """
        with self._lock:
            self._prune_pending = True
        self._prune_if_ready()

    def _prune_if_ready(self) -> None:
        with self._lock:
            if not self._prune_pending or self._closed:
                return
            if any(status.state is not RoleState.READY for status in self._status.values()):
                return
            self._prune_pending = False
            keep = {entry.path for entry in self._entries.values()}
        root = self._cache.root
        for role in self.roles:
            folder = root / role.value / parse_model_id(self.settings.model_id(role)).slug
            keep.update(folder.iterdir() if folder.is_dir() else ())
        before = _bytes_under(root)
        removed = self._cache.prune_unused(keep)
        if removed:
            _LOGGER.info(
                "Removed %d cached model(s) no longer configured (%s): %.1f MB freed",
                len(removed),
                ", ".join(str(path.relative_to(root)) for path in removed),
                (before - _bytes_under(root)) / 1e6,
            )

    def close(self) -> None:
        """Stop conversions, finish the queued inference and drop the models."""
        with self._lock:
            self._closed = True
        self._cache.close()
        # Let a model that is being compiled finish: a daemon thread still inside OpenVINO when
        # the interpreter exits aborts the process ("terminate called ..."), i.e. exit code -6.
        for thread in list(self._threads.values()):
            thread.join(timeout=60)
        self.executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._models.clear()
            self._lite.clear()


def _left_out(candidate: precisions.Candidate, err: ModelCacheError) -> bool:
    """Whether ``precision: auto``'s probe leaves out ``candidate``, whose entry could not be
    made, and serves another precision: a variant this image cannot make (a checkpoint without
    torch) or whose making failed (a graph static INT8 cannot calibrate, a conversion child killed
    for memory on a small host). Anything else (a download that broke off, a full disk, the add-on
    stopping) fails the role, to be retried; so does any failure of the FP32 entry, which every
    candidate needs."""
    return err.code in (CONVERTER_MISSING, CONVERSION_FAILED) and candidate.ir != precisions.FP32.ir


def _bytes_under(root: Path) -> int:
    """The size of every file under ``root`` (a file removed meanwhile counts as empty)."""
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total
