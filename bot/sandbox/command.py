"""`loopwright sandbox`: run one command in the sandbox exactly the way loops do."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from bot.sandbox.base import (
    DEFAULT_OUTPUT_CAP,
    SandboxError,
    SandboxMode,
    SandboxResult,
    grant_workspace,
)
from bot.sandbox.jail import run_sandboxed
from bot.text import redact, redact_data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopwright sandbox",
        description="Run one command in the sandbox exactly the way loops do.",
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=600.0, help="wall-clock seconds")
    parser.add_argument("--network", action="store_true", help="allow network (setup phase)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--user", default=None, help="unprivileged user to run as (when root)")
    parser.add_argument("--mode", choices=("bwrap", "none"), default=None)
    parser.add_argument("--output-cap", type=int, default=DEFAULT_OUTPUT_CAP)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    return parser


def cli(argv: list[str]) -> int:
    """`loopwright sandbox --workdir PATH [--timeout S] [--network] [--json] -- CMD ...`"""
    parser = _parser()
    args = parser.parse_args(argv)
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        parser.error("no command given (put it after --)")

    mode: SandboxMode = args.mode
    run_as: str | None = args.user
    if mode is None or run_as is None:
        from bot.settings import load_settings

        settings = load_settings()
        mode = mode or settings.sandbox
        run_as = run_as or settings.sandbox_user or None
    if mode == "none":
        logging.basicConfig(level=logging.WARNING, format="loopwright: %(message)s")
    try:
        if run_as is not None:
            grant_workspace(args.workdir.resolve(), run_as)
        result = asyncio.run(
            run_sandboxed(
                cmd,
                workdir=args.workdir,
                timeout=args.timeout,
                network=args.network,
                output_cap=args.output_cap,
                mode=mode,
                run_as=run_as,
            )
        )
    except (SandboxError, ValueError) as exc:
        print(f"loopwright sandbox: {exc}", file=sys.stderr)
        return 125
    _print_result(result, as_json=args.json)
    return result.exit_code if result.exit_code >= 0 else 128 - result.exit_code


def _print_result(result: SandboxResult, *, as_json: bool) -> None:
    result.output = redact(result.output)  # every output channel is redacted, this one too
    if as_json:
        print(json.dumps(redact_data(result.to_dict())))
        return
    sys.stdout.write(result.output)
    if result.output and not result.output.endswith("\n"):
        sys.stdout.write("\n")
    state = "timed out" if result.timed_out else f"exit {result.exit_code}"
    cut = f", {result.bytes_cut} bytes of output cut" if result.truncated else ""
    print(
        f"--- loopwright sandbox ({result.mode}{', network' if result.network else ''}): "
        f"{state} in {result.duration_s:.2f}s{cut}",
        file=sys.stderr,
    )
