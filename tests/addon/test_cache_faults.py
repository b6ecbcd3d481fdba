"""Model cache faults, seen through the real server process and its HTTP API.

``test_models_cache.py`` pins the store itself (resume, truncation, checksum, bit flips, missing
manifest). Here the same faults, and a full disk, happen to a running add-on: each must be
detected, reported in /v1/models with a clear message, never loaded (no cache entry, 503 for
that role), repaired by the next load request, while the other roles keep serving.

The disk-full case is real, not mocked: the server runs in a private mount namespace
(``unshare --user --map-root-user --mount``) with a small tmpfs over its model cache, which the
test fills through ``/proc/<pid>/root`` until the conversion child gets ENOSPC.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.addon.live_server import LiveServer, copy_cache, tiny_model_args
from tests.fake_hub import FakeHub

REPO = "OpenVINO/tiny-embedding-ov"
SHA = "c" * 40
OTHERS = ["reranker", "classifier"]


@pytest.fixture
def hub(ov_folder: Path) -> Iterator[FakeHub]:
    with FakeHub() as server:
        server.add_folder(REPO, ov_folder, SHA)
        yield server


def hub_server(tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path], hub: FakeHub) -> LiveServer:
    """Full profile: reranker and classifier from the local cache, the embedding model from the hub."""
    data = copy_cache(fp32_data_dir, tmp_path / "data", roles=tuple(OTHERS))
    args = [*tiny_model_args(tiny_models, data), "--embedding-model", REPO, "--embedding-revision", SHA]
    args += ["--hub-endpoint", hub.url]
    return LiveServer(args, tmp_path / "server.log", hub=True)


def all_ready(models: dict[str, dict[str, Any]], roles: list[str]) -> bool:
    return all(models[r]["state"] == "ready" for r in roles)


def embedding_entries(data: Path) -> list[Path]:
    return sorted((data / "models" / "embedding").glob("*/*-fp32"))


def assert_others_serve(server: LiveServer) -> None:
    """The roles that did not fail keep answering."""
    status, body, _ = server.request("POST", "/v1/classify", {"texts": ["Lock the front door at 23:00"]})
    assert status == 200 and len(body["results"]) == 1, body
    status, body, _ = server.request("POST", "/v1/rerank", {"query": "security", "documents": ["a", "b"]})
    assert status == 200 and len(body["results"]) == 2, body


def assert_embedding_refused(server: LiveServer) -> str:
    """The failed role answers 503 + Retry-After with the reason; returns /v1/models' error."""
    status, body, headers = server.request("POST", "/v1/embed", {"texts": ["hello"]})
    assert status == 503 and body["error"]["code"] == "model_failed", body
    assert int(headers["Retry-After"]) >= 1
    _, report, _ = server.request("GET", "/v1/models")
    embedding: dict[str, Any] = report["models"]["embedding"]
    assert embedding["state"] == "error"
    assert embedding["error"], embedding
    health = server.request("GET", "/health", token=None)[1]
    assert health["models"]["embedding"]["state"] == "error"
    return str(embedding["error"])


def assert_repaired(server: LiveServer) -> None:
    models = server.load(["embedding"])
    assert models["embedding"]["state"] == "ready", models["embedding"]
    assert models["embedding"]["error"] is None
    status, body, _ = server.request("POST", "/v1/embed", {"texts": ["hello", "again"]})
    assert status == 200 and len(body["embeddings"]) == 2


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("truncate", ["openvino_model.bin", "received"]),  # the connection drops halfway, on every try
        ("corrupt", ["checksum"]),  # right size, wrong bytes: the hub's sha256 does not match
    ],
)
def test_a_failed_download_is_reported_never_loaded_and_repaired_on_the_next_load(  # noqa: PLR0917
    tmp_path: Path,
    fp32_data_dir: Path,
    tiny_models: dict[str, Path],
    hub: FakeHub,
    fault: str,
    words: list[str],
) -> None:
    hub.faults[(REPO, "openvino_model.bin")] = fault
    with hub_server(tmp_path, fp32_data_dir, tiny_models, hub) as server:
        server.wait_healthy()
        assert all_ready(server.load(OTHERS), OTHERS)
        assert server.load(["embedding"])["embedding"]["state"] == "error"
        message = assert_embedding_refused(server)
        assert all(w in message for w in words), message
        assert embedding_entries(tmp_path / "data") == []  # nothing half-downloaded became an entry
        # No build left behind; a broken transfer keeps its download folder, for the next try to resume.
        kept = [p.name for p in (tmp_path / "data" / "models" / ".tmp").iterdir()]
        assert all(name.startswith("download-") for name in kept) and len(kept) <= 1, kept
        assert_others_serve(server)

        del hub.faults[(REPO, "openvino_model.bin")]
        assert_repaired(server)
        (entry,) = embedding_entries(tmp_path / "data")
        assert (entry / "openvino_model.bin").read_bytes() == hub.repos[REPO].files["openvino_model.bin"]
        assert list((tmp_path / "data" / "models" / ".tmp").iterdir()) == []  # the download went too
        assert_others_serve(server)
        log = server.log()
    assert "Traceback" not in log


def test_a_truncated_ir_file_in_the_cache_is_detected_and_rebuilt_not_loaded(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    """A local model: the damaged entry is removed and converted again from the source folder."""
    data = copy_cache(fp32_data_dir, tmp_path / "data")
    (entry,) = embedding_entries(data)
    weights = entry / "openvino_model.bin"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # a crash or a full disk cut the file
    with LiveServer(tiny_model_args(tiny_models, data), tmp_path / "server.log") as server:
        server.wait_healthy()
        models = server.load(["embedding", *OTHERS])
        assert {m["state"] for m in models.values()} == {"ready"}, models
        log = server.log()
        assert "is damaged (openvino_model.bin has" in log, log
        assert "rebuilding it" in log
        assert weights.read_bytes() == good  # rebuilt by a fresh conversion, identical
        assert server.request("POST", "/v1/embed", {"texts": ["hello"]})[0] == 200


def test_a_truncated_ir_file_that_cannot_be_fetched_again_is_an_error_until_the_hub_is_back(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path], hub: FakeHub
) -> None:
    """A hub model whose cached weights were cut, while the hub cannot deliver them again."""
    first = hub_server(tmp_path, fp32_data_dir, tiny_models, hub)
    with first:
        first.wait_healthy()
        assert first.load(["embedding"])["embedding"]["state"] == "ready"
    (entry,) = embedding_entries(tmp_path / "data")
    weights = entry / "openvino_model.bin"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 3])
    hub.faults[(REPO, "openvino_model.bin")] = "missing"
    with LiveServer(first.args, tmp_path / "restarted.log", hub=True) as server:  # same data dir
        server.wait_healthy()
        assert all_ready(server.load(OTHERS), OTHERS)
        assert server.load(["embedding"])["embedding"]["state"] == "error"
        message = assert_embedding_refused(server)
        assert "openvino_model.bin" in message, message
        assert "is damaged (openvino_model.bin has" in server.log()
        assert embedding_entries(tmp_path / "data") == []  # the damaged entry is gone, not loaded
        assert_others_serve(server)
        del hub.faults[(REPO, "openvino_model.bin")]
        assert_repaired(server)
        assert weights.read_bytes() == good


def _userns_tmpfs_works() -> bool:
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs none /mnt"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _fill(path: Path, leave_bytes: int) -> None:
    """Write ``path`` until the file system is full, then give ``leave_bytes`` back."""
    block = b"\0" * (1 << 16)
    with path.open("wb") as ballast:
        try:
            while True:
                ballast.write(block)
                ballast.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
        size = ballast.tell()
    with path.open("r+b") as ballast:
        ballast.truncate(max(0, size - leave_bytes))


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1)")
def test_no_space_left_during_conversion_is_reported_and_repaired_once_space_is_free(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path]
) -> None:
    if not _userns_tmpfs_works():
        pytest.skip("user namespaces with a private tmpfs are not available here")
    data = tmp_path / "data"
    models_dir = data / "models"
    models_dir.mkdir(parents=True)
    seed = copy_cache(fp32_data_dir, tmp_path / "seed", roles=tuple(OTHERS)) / "models"
    # In a private mount namespace: a 32 MiB tmpfs over the model cache, seeded with the two
    # converted roles; the embedding model must be converted into it.
    script = 'mount -t tmpfs -o size=32m homeiq-test "$1" && cp -a "$2"/. "$1"/ && shift 2 && exec "$@"'
    prefix = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
        str(models_dir),
        str(seed),
    ]
    with LiveServer(tiny_model_args(tiny_models, data), tmp_path / "server.log", prefix=prefix) as server:
        server.wait_healthy()
        assert all_ready(server.load(OTHERS), OTHERS)
        inside = Path(f"/proc/{server.pid}/root") / str(models_dir).lstrip("/")
        assert not (models_dir / "reranker").exists() and (inside / "reranker").is_dir()  # really private
        ballast = inside / "ballast"
        _fill(ballast, leave_bytes=256 * 1024)  # room for config files, not for the weights

        assert server.load(["embedding"])["embedding"]["state"] == "error"
        message = assert_embedding_refused(server)
        assert "no space left on device" in message.lower(), message
        assert list((inside / "embedding").glob("*/*-fp32")) == []  # nothing half-written is used
        assert list((inside / ".tmp").iterdir()) == []  # and the work folder was cleaned up
        assert_others_serve(server)

        ballast.unlink()  # the user frees space
        assert_repaired(server)
        assert len(list((inside / "embedding").glob("*/*-fp32"))) == 1
        assert_others_serve(server)


@pytest.mark.parametrize("cache", ["converted", "empty"])
def test_stopping_the_server_while_models_load_exits_cleanly(
    tmp_path: Path, fp32_data_dir: Path, tiny_models: dict[str, Path], cache: str
) -> None:
    """SIGTERM during a load (compiling, or converting in the child) is a clean stop, not an abort."""
    data = copy_cache(fp32_data_dir, tmp_path / "data") if cache == "converted" else tmp_path / "data"
    server = LiveServer(tiny_model_args(tiny_models, data), tmp_path / "server.log")
    with server:
        server.wait_healthy()
        status, _, _ = server.request("POST", "/v1/models/load", {"roles": ["embedding", *OTHERS]})
        assert status == 202
        returncode = server.stop()
    log = server.log()
    assert returncode == 0, log[-3000:]
    assert "terminate called" not in log and "Traceback" not in log, log[-3000:]
    assert (
        not list((data / "models" / ".tmp").glob("*/entry")) if (data / "models" / ".tmp").exists() else True
    )
