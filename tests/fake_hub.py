"""A loopback stand-in for the Hugging Face Hub: the few endpoints huggingface_hub calls.

- ``GET /api/models/{repo}[/revision/{rev}]``: commit sha and files (size, LFS sha256);
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: file metadata headers and bytes (Range aware).

A repository keeps its older commits: ``main`` (and the head's sha) name the newest one, an
older sha its own files, anything else answers 404 with the hub's ``RevisionNotFound`` code.

Faults per file simulate what goes wrong in real downloads: ``truncate`` (connection drops
halfway, every time), ``truncate_once`` (drops once; a resumed request succeeds), ``corrupt``
(right size, wrong bytes: the advertised sha256 no longer matches) and ``missing`` (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class FakeRepo:
    """One repository: the head commit of ``main`` and the older commits."""

    sha: str
    files: dict[str, bytes]
    history: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        """(commit, files) that ``revision`` names, or None."""
        if revision in ("main", self.sha):
            return self.sha, self.files
        if revision in self.history:
            return revision, self.history[revision]
        return None

    def commit(self, sha: str, files: dict[str, bytes]) -> None:
        """A new head commit; the old one stays reachable by its sha."""
        self.history[self.sha] = self.files
        self.sha, self.files = sha, files


@dataclass
class FakeHub:
    """Serve ``repos`` on 127.0.0.1 from a background thread; use as a context manager."""

    repos: dict[str, FakeRepo] = field(default_factory=dict)
    faults: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def add_folder(self, repo_id: str, folder: Path, sha: str) -> None:
        """Publish every file of ``folder`` (recursively) as ``repo_id`` at commit ``sha``: a new
        repository, or a new head commit of an existing one."""
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        if repo_id in self.repos:
            self.repos[repo_id].commit(sha, files)
        else:
            self.repos[repo_id] = FakeRepo(sha, files)

    def downloads(self) -> int:
        """How many file bodies were sent (GET on resolve), in all."""
        return sum(n for key, n in self.requests.items() if key.startswith("GET "))

    def _lookup(self, request: web.Request) -> tuple[str, dict[str, bytes]] | web.Response:
        """The commit and files a request names, or the hub's 404 answer."""
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        if repo is None:
            return web.json_response(
                {"error": "Repository not found"}, status=404, headers={"X-Error-Code": "RepoNotFound"}
            )
        found = repo.at(request.match_info.get("rev", "main"))
        if found is None:
            return web.json_response(
                {"error": "Invalid rev id"}, status=404, headers={"X-Error-Code": "RevisionNotFound"}
            )
        return found

    # ---- handlers -----------------------------------------------------------------------
    async def _info(self, request: web.Request) -> web.Response:
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        self.requests[f"info {repo_id}"] += 1
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        sha, files = found
        siblings = []
        for name, data in files.items():
            entry: dict[str, object] = {"rfilename": name, "size": len(data)}
            if name.endswith((".safetensors", ".bin", ".npy", ".onnx", ".onnx_data")):
                entry["lfs"] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pointerSize": 134,
                }
            siblings.append(entry)
        return web.json_response({"id": repo_id, "modelId": repo_id, "sha": sha, "siblings": siblings})

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        name = request.match_info["path"]
        fault = self.faults.get((repo_id, name))
        self.requests[f"{request.method} {name}"] += 1
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        sha, files = found
        if name not in files or fault == "missing":
            return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound"})
        data = files[name]
        etag = hashlib.sha256(data).hexdigest()
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(status=200, headers=headers)
        if fault == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        if request.http_range.start is not None:
            start = request.http_range.start
        body = data[start:]
        response = web.StreamResponse(status=206 if start else 200, headers=headers)
        response.content_length = len(body)
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await response.prepare(request)
        truncate = fault == "truncate" or (fault == "truncate_once" and self.requests[f"GET {name}"] == 1)
        if truncate:
            await response.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-file
            return response
        await response.write(body)
        await response.write_eof()
        return response

    # ---- life cycle ---------------------------------------------------------------------
    def __enter__(self) -> FakeHub:
        """Start the server; ``self.url`` is its endpoint."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/api/models/{owner}/{name}", self._info)
            app.router.add_get("/api/models/{owner}/{name}/revision/{rev}", self._info)
            app.router.add_route("*", "/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-hub", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


@contextlib.contextmanager
def serving(folders: Mapping[str, Path], sha: str) -> Iterator[FakeHub]:
    """A running hub that publishes each folder as its repository id at commit ``sha``."""
    with FakeHub() as hub:
        for repo_id, folder in folders.items():
            hub.add_folder(repo_id, folder, sha)
        yield hub
