"""``make demo``: the whole product on this machine, offline.

Starts the add-on (lite profile, real all-MiniLM-L6-v2) and a real Home Assistant with the
integration, seeds 28 days of a demo home's history, analyses it and prints the ranked
suggestions. ``--once`` (``make demo ONCE=1``) exits after printing; otherwise both processes
keep running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import socket
import sys
from pathlib import Path

from homeiq_addon.launch import ROOT, ServerError, free_port

from .flow import Progress, analyze, format_table, get_suggestions, start_stack
from .harness import HarnessError


def _ha_port(wanted: int) -> int:
    """Port 8123 (HA's usual) when free, else any free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            return free_port()
    return wanted


async def run(args: argparse.Namespace) -> int:
    progress = Progress(sys.stdout)
    workdir: Path = args.workdir
    ha_dir = workdir / "homeassistant"
    if ha_dir.exists():  # Home Assistant starts fresh each run; the add-on's model cache is kept
        shutil.rmtree(ha_dir)
    stack = await start_stack(workdir, progress, seed=args.seed, ha_port=_ha_port(args.ha_port))
    try:
        with progress.phase("analysis", "mining patterns, ranking and classifying them in the add-on"):
            summary = await analyze(stack)
            progress.note(
                f"mining: {summary['changes']:,} state changes -> {summary['patterns']} patterns "
                f"in {summary['mining_s']:.1f} s"
            )
            progress.note(
                f"ranking: {summary['candidates']} candidates -> {summary['new']} new suggestions "
                f"({summary['duplicates']} near-duplicates dropped) in {summary['ranking_s']:.1f} s "
                f"by the add-on's {summary['profile']} profile"
            )
            for role, model in (summary.get("models") or {}).items():
                progress.note(f"  {role}: {model}")
        suggestions = await get_suggestions(stack, status=["new"])
        print()
        print(f"{len(suggestions)} automation suggestions, best first:")
        print(format_table(suggestions))
        print()
        print(f"Home Assistant: {stack.ha.url}  (user: demo, password: homeiq-demo)")
        print("  • the to-do list 'Automation suggestions' (check an item to accept it, delete to dismiss)")
        print(
            "  • Developer tools → Actions: homeiq.get_suggestions, homeiq.accept_suggestion, homeiq.analyze"
        )
        print(f"Add-on API: {stack.addon.url} (token in {args.workdir}/addon-data)")
        print(f"Logs: {stack.ha.log_path}, {stack.addon.log_path}")
        if args.once:
            return 0
        print("\nRunning; press Ctrl-C to stop both processes.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("\nStopping Home Assistant and the add-on …")
        return 0
    finally:
        stack.stop()
        print("Stopped.")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="print the suggestions and exit")
    parser.add_argument("--seed", type=int, default=3, help="which synthetic demo home")
    parser.add_argument("--ha-port", type=int, default=8123)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".demo")
    args = parser.parse_args()
    try:
        code = asyncio.run(run(args))
    except (HarnessError, ServerError) as err:
        print(f"\ndemo failed: {err}", file=sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
