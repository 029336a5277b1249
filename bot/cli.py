"""`loopwright` — the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.local_model import LocalModelError
from bot.settings import Settings, SettingsError, load_settings
from bot.text import redact


class RedactingFilter(logging.Filter):
    """Logs are outbound text too: scrub token-like strings and our own secrets from them."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


def _setup_logging(settings: Settings, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(settings.secret_values()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loopwright", description=__doc__)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="receive webhooks (and run workers in-process)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="in-process workers (default: LOOPWRIGHT_WORKER_CONCURRENCY; 0 = intake only)",
    )

    w = sub.add_parser("worker", help="run workers only (next to a `serve --workers 0`)")
    w.add_argument("--concurrency", type=int, default=None)

    r = sub.add_parser("runs", help="list loop runs")
    r.add_argument("--json", action="store_true")
    r.add_argument("--limit", type=int, default=50)
    r.add_argument("--steps", type=int, metavar="RUN_ID", help="show the steps of one run")

    sub.add_parser("config-schema", help="print the JSON schema of .github/loopwright.yml")

    run = sub.add_parser("run", help="run a loop locally, without GitHub (dry run)")
    run.add_argument("loop", choices=["triage", "fix", "reproduce"])
    run.add_argument("--repo", type=Path, required=True, help="local checkout of the repository")
    run.add_argument(
        "--issue-file",
        type=Path,
        required=True,
        help="markdown file; its first '# ' line is the title",
    )
    run.add_argument("--labels", help="comma-separated repository labels (default: GitHub's)")
    run.add_argument("--json", action="store_true")

    rp = sub.add_parser("replay", help="route a saved webhook payload and dry-run its loops")
    rp.add_argument("payload", type=Path)
    rp.add_argument("--event", required=True, help="the X-GitHub-Event name, e.g. issues")
    rp.add_argument("--repo", type=Path, help="local checkout to read .github/loopwright.yml from")
    rp.add_argument("--labels", help="comma-separated repository labels (default: GitHub's)")
    rp.add_argument("--json", action="store_true")

    # Parsed by bot.sandbox itself (see main); listed here for --help only.
    sub.add_parser(
        "sandbox",
        add_help=False,
        help="run one command in the sandbox the way loops do "
        "(--workdir PATH [--timeout S] [--network] [--json] -- CMD ...)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:
        return _sandbox(argv[1:])
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _setup_logging(settings, args.log_level)
        return _dispatch(args, settings)
    except (SettingsError, LocalModelError) as exc:
        print(f"loopwright: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "config-schema":
        from bot.repo_config import config_json_schema

        print(json.dumps(config_json_schema(), indent=2))
        return 0
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "worker":
        return asyncio.run(_worker(settings, args.concurrency or settings.worker_concurrency))
    if args.command == "runs":
        return asyncio.run(_runs(settings, args))
    if args.command == "run":
        return asyncio.run(_run_local(settings, args))
    if args.command == "replay":
        return asyncio.run(_replay(settings, args))
    raise AssertionError(args.command)


def _sandbox(argv: list[str]) -> int:
    # bot.sandbox has its own parser: everything after `--` is the command, flags included.
    from bot import sandbox

    return int(sandbox.cli(argv))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import build_app

    workers = settings.worker_concurrency if args.workers is None else args.workers
    settings.require("webhook_secret")
    if workers:
        settings.require("app_id", "private_key")
    app = build_app(settings, workers=workers)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda m: print(m, file=sys.stderr),
    )
    return 0


async def _worker(settings: Settings, concurrency: int) -> int:
    from bot.app import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Runtime.open(settings, workers=concurrency):
        logging.getLogger("loopwright").info("%d workers running", concurrency)
        await stop.wait()
    return 0


def _ts(value: Any) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S")


async def _runs(settings: Settings, args: argparse.Namespace) -> int:
    from bot import db as dbmod
    from bot.store import Store

    database = await dbmod.connect(settings.resolved_database_url())
    try:
        store = Store(database)
        await store.init()
        if args.steps is not None:
            steps = await store.steps_for(args.steps)
            if args.json:
                print(json.dumps(steps, indent=2, default=str))
            else:
                for s in steps:
                    print(
                        f"#{s['id']} {s['name']} [{s['kind']}] {s['verdict']} "
                        f"model={s['model'] or '-'} tokens={s['prompt_tokens']}+"
                        f"{s['completion_tokens']} {s['duration_ms']:.0f}ms"
                    )
            return 0
        runs = await store.list_runs(limit=args.limit)
        dead = await store.list_jobs("dead", limit=args.limit)
    finally:
        await database.close()
    if args.json:
        print(json.dumps({"runs": runs, "dead_jobs": dead}, indent=2, default=str))
        return 0
    header = [
        "id",
        "loop",
        "repo",
        "#",
        "state",
        "exit",
        "calls",
        "prompt",
        "compl",
        "cost",
        "started",
        "finished",
    ]
    rows = [
        [
            str(r["id"]),
            r["loop"],
            r["repo"],
            str(r["number"] or "-"),
            r["state"],
            r["exit_reason"] or "-",
            str(r["model_calls"]),
            str(r["prompt_tokens"]),
            str(r["completion_tokens"]),
            f"${r['cost']:.4f}",
            _ts(r["started_at"]),
            _ts(r["finished_at"]),
        ]
        for r in runs
    ]
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
        for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if dead:
        print(f"\n{len(dead)} dead job(s):")
        for j in dead:
            err = (j["last_error"] or "").splitlines()[0] if j["last_error"] else ""
            print(
                f"  job {j['id']} {j['kind']} {j['repo']}#{j['number']} after "
                f"{j['attempts']} attempts: {err}"
            )
    return 0


def _labels(arg: str | None) -> list[str] | None:
    return [x.strip() for x in arg.split(",") if x.strip()] if arg else None


def _print_result(result: Any, as_json: bool) -> None:
    data = result.as_dict()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    print(f"exit: {data['exit']} ({data['detail']})")
    if data.get("note"):
        print(f"note: {data['note']}")
    print(f"labels: {', '.join(data['labels']) or '(none)'}")
    u = data["usage"]
    print(
        f"usage: {u['calls']} model call(s), {u['prompt_tokens']} prompt + "
        f"{u['completion_tokens']} completion tokens, ${u['cost']:.4f}"
    )
    print("comment:\n" + (data["comment"] or "(none)"))
    if data.get("diff"):
        print("diff:\n" + data["diff"])


async def _run_local(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import Runtime, read_issue_file, run_local
    from bot.forge import DryRunForge

    if not args.repo.is_dir():
        raise SettingsError(f"--repo {args.repo} is not a directory")
    code_loop = args.loop in ("fix", "reproduce")
    if code_loop and not (args.repo / ".git").exists():
        raise SettingsError(
            f"--repo {args.repo} is not the root of a git repository; `{args.loop}` works on its "
            "committed HEAD (git init && git add -A && git commit -m init)"
        )
    issue = read_issue_file(args.issue_file)
    forge = DryRunForge(
        f"local/{args.repo.resolve().name}",
        issue=issue,
        labels=_labels(args.labels),
        repo_path=args.repo,
        secrets=settings.secret_values(),
    )
    from bot.progress import TerminalProgress

    with TerminalProgress() as progress:
        async with Runtime.open(settings, model=True) as rt:
            result = await run_local(
                rt,
                args.loop,
                forge.repo,
                forge,
                issue.number,
                repo_path=args.repo if code_loop else None,
                on_progress=progress if code_loop else None,
            )
    _print_result(result, args.json)
    return 0 if result.outcome.exit.succeeded else 1


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from gidgethub.sansio import Event

    from bot.app import Runtime, decide, replay

    data = json.loads(args.payload.read_text())
    event = Event(data, event=args.event, delivery_id=f"replay-{args.payload.name}")
    specs = await decide(event, settings)
    if not specs:
        # Decided before any model starts: nothing to run, nothing to load.
        print("[]" if args.json else "no loop would run for this event")
        return 0
    async with Runtime.open(settings, model=True) as rt:
        results = await replay(rt, event, specs, labels=_labels(args.labels), repo_path=args.repo)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            _print_result(r, False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
