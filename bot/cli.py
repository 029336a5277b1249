"""`loopwright` — the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from bot.jobs import LoopName
from bot.local_model import LocalModelError
from bot.migrations import SchemaTooNew
from bot.settings import Settings, SettingsError, load_settings
from bot.text import Redactor, redactor

#: The attributes every LogRecord has; anything else on a record is an `extra=` field.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
_TRACEBACKS = logging.Formatter()

#: The loops `loopwright run` offers: the ones an issue file starts.
LOCAL_LOOPS = (LoopName.TRIAGE, LoopName.FIX, LoopName.REPRODUCE)


class RedactingFilter(logging.Filter):
    """Logs are outbound text too: scrub token-like strings and our own secrets from them.

    Installed on the handler, so it sees every record the handler writes, from any logger. The
    record is redacted in place — message with its arguments, traceback, stack, `extra=` fields
    — so whatever formatter comes after (plain or structured) only sees redacted text.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redact = redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_loopwright_redacted", False):  # another handler got it first
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is rather than raise here
            message = f"{record.msg} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            # Formatted here, once, and redacted; formatters append `exc_text` as it is.
            if not record.exc_text:
                record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and isinstance(value, str | list | tuple | dict):
                setattr(record, key, self.redact.data(value))
        record._loopwright_redacted = True
        return True


def _redacting_excepthooks(redact: Redactor) -> None:
    """An exception nobody caught is printed by Python itself: redact that traceback too."""

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        assert args.exc_value is not None
        excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def _setup_logging(settings: Settings, level: str) -> None:
    """Text or JSON lines on stderr, redacted (`bot.logs`; `LOOPWRIGHT_LOG_FORMAT`)."""
    from bot import logs

    logs.configure(settings, level)


def _emit(settings: Settings | None, data: Any, *, as_json: bool = True) -> Any:
    """The one way the CLI prints a document: every string in it redacted first (token-like
    strings and the configured secrets), at any depth. Returns the redacted document; with
    `as_json` it also prints it as JSON."""
    clean = redactor(settings.secret_values() if settings else ()).data(data)
    if as_json:
        print(json.dumps(clean, indent=2, default=str))
    return clean


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
    r.add_argument(
        "--costs",
        action="store_true",
        help="spend per repository, loop and model over the last day and month, against the caps",
    )

    rd = sub.add_parser(
        "redeliver",
        help="ask GitHub to redeliver the failed webhook deliveries we never stored",
    )
    rd.add_argument(
        "--since", default="2h", help="how far back to look: 90s, 30m, 2h, 3d (default 2h)"
    )
    rd.add_argument("--dry-run", action="store_true", help="list what would be redelivered")
    rd.add_argument("--json", action="store_true")

    sub.add_parser("config-schema", help="print the JSON schema of .github/loopwright.yml")

    t = sub.add_parser(
        "train", help="train a repository's issue-type classifier from labelled issues"
    )
    t.add_argument("what", choices=["triage"])
    t.add_argument(
        "--from-csv", type=Path, required=True, help="labelled issues (title, body, label)"
    )
    where = t.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--repo", type=Path, help="local checkout the model is for (as `run triage --repo`)"
    )
    where.add_argument("--repo-name", help="owner/name of a GitHub repository the model is for")
    t.add_argument("--title-column", default="title")
    t.add_argument("--body-column", default="body")
    t.add_argument("--label-column", default="label")
    t.add_argument("--folds", type=int, default=5, help="cross-validation folds for the card")
    t.add_argument("--json", action="store_true")

    ev = sub.add_parser("eval", help="score every issue-type decider on the same labelled issues")
    ev.add_argument("what", choices=["triage"])
    ev.add_argument(
        "--dataset", type=Path, required=True, help="labelled issues (title, body, label)"
    )
    ev.add_argument(
        "--candidates",
        default="keywords,classifier,embedded",
        help="comma-separated: keywords, classifier, embedded, model:NAME "
        "(default keywords,classifier,embedded)",
    )
    ev.add_argument(
        "--train",
        type=Path,
        help="train the classifier on this CSV instead of cross-validating on the dataset",
    )
    ev.add_argument(
        "--model-limit",
        type=int,
        default=60,
        help="issues the model candidates triage (a stratified sample; default 60)",
    )
    ev.add_argument("--title-column", default="title")
    ev.add_argument("--body-column", default="body")
    ev.add_argument("--label-column", default="label")
    ev.add_argument("--folds", type=int, default=5)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true")

    tr = sub.add_parser(
        "traces", help="export recorded model steps as fine-tuning JSONL, with their outcome"
    )
    tr.add_argument("what", choices=["export"])
    tr.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    tr.add_argument("--step", help="only this model step (triage, write_test, patch, …)")
    tr.add_argument(
        "--outcome",
        action="append",
        default=[],
        help="only these outcomes (repeatable): corrected, kept, accepted, refused, reverted, …",
    )
    tr.add_argument("--repo", help="only this repository (owner/name)")
    tr.add_argument("--since", help="only steps recorded in the last 90m, 2h, 7d, …")

    run = sub.add_parser("run", help="run a loop locally, without GitHub (dry run)")
    run.add_argument("loop", choices=[n.value for n in LOCAL_LOOPS])
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

    from bot import doctor, setup_app

    setup_app.add_arguments(
        sub.add_parser(
            "setup", help="register the GitHub App from app.yml (GitHub's manifest flow)"
        )
    )
    doctor.add_arguments(
        sub.add_parser("doctor", help="check the install is ready to serve, with the fix for each")
    )

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
    if args.command == "doctor":
        # Loading the settings is doctor's first check: a bad variable is one failed line.
        from bot import doctor

        return doctor.run(None, args)
    settings: Settings | None = None
    try:
        settings = load_settings()
        _setup_logging(settings, args.log_level)
        return _dispatch(args, settings)
    except (SettingsError, LocalModelError, SchemaTooNew) as exc:
        secrets = settings.secret_values() if settings else ()
        print(f"loopwright: {redactor(secrets)(str(exc))}", file=sys.stderr)
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
    if args.command == "redeliver":
        return asyncio.run(_redeliver(settings, args))
    if args.command == "train":
        return _train(settings, args)
    if args.command == "setup":
        from bot import setup_app

        return setup_app.run(settings, args)
    if args.command == "eval":
        return _eval(settings, args)
    if args.command == "traces":
        return asyncio.run(_traces(settings, args))
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
    # SIGTERM/SIGINT: aiohttp stops accepting, lets in-flight requests finish (up to
    # `shutdown_timeout`), then the cleanup stops the workers with their own grace period.
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        shutdown_timeout=10.0,
        print=lambda m: print(m, file=sys.stderr),
    )
    return 0


async def _worker(settings: Settings, concurrency: int) -> int:
    from bot.app import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log = logging.getLogger("loopwright")
    async with Runtime.open(settings, workers=concurrency) as rt:

        def on_signal() -> None:
            if stop.is_set():
                log.info("second signal: interrupting running jobs now")
                if rt.pool:
                    rt.pool.hurry()
                return
            log.info(
                "stopping: no new jobs; running jobs get %.0fs to finish, then go back to "
                "the queue (a second signal: at once)",
                settings.shutdown_grace_seconds,
            )
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        log.info("%d workers running", concurrency)
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
        store = Store(database, secrets=settings.secret_values())
        await store.init()
        if args.costs:
            from bot.costs import format_spend_report, spend_report

            spend = await spend_report(store, now=time.time())
            if args.json:
                _emit(settings, [asdict(r) for r in spend])
            else:
                print(_emit(settings, format_spend_report(spend, settings), as_json=False))
            return 0
        if args.steps is not None:
            # Redacted again on the way out: rows written before the store redacted them.
            steps = _emit(settings, await store.steps_for(args.steps), as_json=args.json)
            if not args.json:
                for s in steps:
                    print(
                        f"#{s['id']} {s['name']} [{s['kind']}] {s['verdict']} "
                        f"model={s['model'] or '-'} tokens={s['prompt_tokens']}+"
                        f"{s['completion_tokens']} {s['duration_ms']:.0f}ms"
                    )
            return 0
        runs = await store.list_runs(limit=args.limit)
        dead = await store.list_jobs("dead", limit=args.limit)
        precision = []
        for repo in await store.triaged_repos():
            kept, corrected = await store.live_precision(repo)
            total = kept + corrected
            precision.append(
                {
                    "repo": repo,
                    "kept": kept,
                    "corrected": corrected,
                    "precision": round(kept / total, 4) if total else None,
                }
            )
    finally:
        await database.close()
    report = _emit(
        settings,
        {"runs": runs, "dead_jobs": dead, "triage_precision": precision},
        as_json=args.json,
    )
    if args.json:
        return 0
    runs, dead = report["runs"], report["dead_jobs"]
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
    if precision:
        print("\ntype labels loopwright applied (live precision: kept vs corrected by a writer):")
        for p in report["triage_precision"]:
            share = "-" if p["precision"] is None else f"{p['precision']:.1%}"
            print(f"  {p['repo']}: {p['kept']} kept, {p['corrected']} corrected ({share})")
    if dead:
        print(f"\n{len(dead)} dead job(s):")
        for j in dead:
            err = (j["last_error"] or "").splitlines()[0] if j["last_error"] else ""
            print(
                f"  job {j['id']} {j['kind']} {j['repo']}#{j['number']} after "
                f"{j['attempts']} attempts: {err}"
            )
    return 0


async def _redeliver(settings: Settings, args: argparse.Namespace) -> int:
    from bot import redeliver
    from bot.app import Runtime

    try:
        since = redeliver.parse_since(args.since)
    except ValueError as exc:
        raise SettingsError(f"--since: {exc}") from None
    async with Runtime.open(settings, github=True) as rt:
        assert rt.github is not None
        report = await redeliver.reconcile(
            rt.github, rt.store, since_seconds=since, dry_run=args.dry_run
        )
    if args.json:
        _emit(settings, report.as_dict())
    else:
        print(_emit(settings, redeliver.format_report(report), as_json=False))
    return 1 if report.errors else 0


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from bot import triage_eval, triage_model

    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    for name in names:
        if name not in ("keywords", "classifier", "embedded") and not name.startswith("model:"):
            raise SettingsError(
                f"--candidates: unknown {name!r} (use keywords, classifier, embedded, model:NAME)"
            )
    if any(n.startswith("model:") for n in names) and not settings.model_base_url:
        raise SettingsError(
            "--candidates model:NAME needs an endpoint: set LOOPWRIGHT_MODEL_BASE_URL"
        )
    for flag, path in (("--dataset", args.dataset), ("--train", args.train)):
        if path is not None and not path.is_file():
            raise SettingsError(f"{flag} {path} is not a file")
    if args.model_limit < 1:
        raise SettingsError("--model-limit must be at least 1")
    columns = {"title": args.title_column, "body": args.body_column, "label": args.label_column}
    if args.log_level.upper() == "INFO":
        # One "run N … done" line per issue would bury the progress bar; --log-level DEBUG
        # shows them.
        logging.getLogger("loopwright").setLevel(logging.WARNING)
    try:
        examples = triage_model.read_csv(args.dataset, **columns)
        train_examples = triage_model.read_csv(args.train, **columns) if args.train else None
        if not examples:
            raise SettingsError(f"--dataset {args.dataset} has no labelled rows")
        bar = _ProgressBar()
        report = triage_eval.evaluate(
            args.dataset,
            examples,
            names,
            train_examples=train_examples,
            folds=args.folds,
            seed=args.seed,
            model_limit=args.model_limit,
            progress=bar,
        )
        bar.done()
    except (triage_model.TrainingError, ValueError) as exc:
        raise SettingsError(str(exc)) from None
    if args.json:
        _emit(settings, report.to_dict())
    else:
        print(_emit(settings, report.to_markdown(), as_json=False), end="")
    return 0


class _ProgressBar:
    """`what [#####.....] done/total` on stderr: redrawn in place on a terminal, one line per
    tenth otherwise (CI logs, pipes)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last: tuple[str, int] = ("", -1)

    def __call__(self, what: str, done: int, total: int) -> None:
        tenth = (10 * done // total) if total else 10
        if not self.tty and (what, tenth) == self.last:
            return
        self.last = (what, tenth)
        filled = (24 * done // total) if total else 24
        line = f"{what} [{'#' * filled}{'.' * (24 - filled)}] {done}/{total}"
        if self.tty:
            print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


async def _traces(settings: Settings, args: argparse.Namespace) -> int:
    from bot import db as dbmod
    from bot import traces
    from bot.redeliver import parse_since
    from bot.store import Store

    since = None
    if args.since:
        try:
            since = time.time() - parse_since(args.since)
        except ValueError as exc:
            raise SettingsError(f"--since: {exc}") from None
    for o in args.outcome:
        if o not in traces.OUTCOMES:
            raise SettingsError(f"--outcome {o!r}: use one of {', '.join(traces.OUTCOMES)}")
    database = await dbmod.connect(settings.resolved_database_url())
    try:
        store = Store(database, secrets=settings.secret_values())
        await store.init()
        records = await traces.export(
            store,
            redactor(settings.secret_values()),
            since=since,
            repo=args.repo,
            step=args.step,
            outcomes=args.outcome,
        )
    finally:
        await database.close()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {len(records)} traces to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def local_repo_name(path: Path) -> str:
    """The repository name local mode gives a checkout (`local/<directory name>`)."""
    return f"local/{path.resolve().name}"


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from bot import triage_model

    if args.repo is not None:
        if not args.repo.is_dir():
            raise SettingsError(f"--repo {args.repo} is not a directory")
        repo = local_repo_name(args.repo)
    else:
        repo = str(args.repo_name)
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise SettingsError(f"--repo-name {repo!r} is not owner/name")
    if not args.from_csv.is_file():
        raise SettingsError(f"--from-csv {args.from_csv} is not a file")
    if not 2 <= args.folds <= 20:
        raise SettingsError("--folds must be between 2 and 20")
    try:
        examples = triage_model.read_csv(
            args.from_csv,
            title=args.title_column,
            body=args.body_column,
            label=args.label_column,
        )
        counts: dict[str, int] = {}
        for ex in examples:
            counts[ex.label] = counts.get(ex.label, 0) + 1
        print(
            f"training the issue-type classifier for {repo} on {len(examples)} issues ("
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f"); cross-validating {args.folds} folds, then fitting on all…",
            file=sys.stderr,
        )
        started = time.monotonic()
        clf, card = triage_model.train(
            examples, source=f"csv:{args.from_csv.name}", folds=args.folds
        )
    except (triage_model.TrainingError, ValueError) as exc:
        raise SettingsError(str(exc)) from None
    directory = triage_model.model_dir(settings.data_dir, repo)
    clf.save(directory)
    seconds = time.monotonic() - started
    if args.json:
        _emit(
            settings,
            {
                "repo": repo,
                "model_dir": str(directory),
                "seconds": round(seconds, 1),
                "card": card.to_dict(),
            },
        )
        return 0
    print(card.to_markdown())
    print(f"\nsaved to {directory} ({seconds:.0f} s); `loopwright run triage --repo …` uses it")
    return 0


def _labels(arg: str | None) -> list[str] | None:
    return [x.strip() for x in arg.split(",") if x.strip()] if arg else None


def _print_result(settings: Settings, result: Any, as_json: bool) -> None:
    # Test output, the model's summary, notes and the diff can carry a planted token: the
    # report is redacted as a whole, for --json and for the text below alike.
    data = _emit(settings, result.as_dict(), as_json=as_json)
    if as_json:
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
    loop = LoopName(args.loop)
    code_loop = loop in (LoopName.FIX, LoopName.REPRODUCE)
    if code_loop and not (args.repo / ".git").exists():
        raise SettingsError(
            f"--repo {args.repo} is not the root of a git repository; `{args.loop}` works on its "
            "committed HEAD (git init && git add -A && git commit -m init)"
        )
    issue = read_issue_file(args.issue_file)
    forge = DryRunForge(
        local_repo_name(args.repo),
        issue=issue,
        labels=_labels(args.labels),
        repo_path=args.repo,
        secrets=settings.secret_values(),
    )
    from bot.progress import TerminalProgress

    redact = redactor(settings.secret_values())
    with TerminalProgress() as terminal:

        def progress(text: str) -> None:
            terminal(redact(text))

        async with Runtime.open(settings, model=True) as rt:
            result = await run_local(
                rt,
                loop,
                forge.repo,
                forge,
                issue.number,
                repo_path=args.repo if code_loop else None,
                on_progress=progress if code_loop else None,
            )
    _print_result(settings, result, args.json)
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
        _emit(settings, [r.as_dict() for r in results])
    else:
        for r in results:
            _print_result(settings, r, False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
