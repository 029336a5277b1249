"""Working copies for the code-changing loops: a clone from the mirror, its sandbox environment,
its tests, and the push of the loop's branch.

`CodeHost` knows where code comes from (GitHub through the installation token, or a checkout on
disk in local mode); `Checkout` is one job's working copy with everything a loop does to it.
Tests run only inside the sandbox; git and the push only on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bot.repo_config import CommandsConfig
from bot.sandbox import (
    Bind,
    EnvInfo,
    SandboxResult,
    grant_workspace,
    prepare_environment,
    run_sandboxed,
)
from bot.settings import Settings
from bot.testresults import (
    TestRun,
    baseline_run,
    default_test_command,
    pytest_position,
    run_tests,
    shape_pytest_command,
)
from bot.workspace import MirrorCache, TreeSnapshot, Workspace, open_workspace

log = logging.getLogger("loopwright.checkout")

TokenFn = Callable[[], Awaitable[str]]

#: Runs after the baseline may take this many times its duration (at least the floor).
RUN_TIMEOUT_FACTOR = 5.0
RUN_TIMEOUT_FLOOR_S = 120.0

#: Where tools loopwright ships (its own ruff binary) appear inside the sandbox.
SANDBOX_TOOLS = "/opt/loopwright/bin"


def find_ruff() -> str | None:
    """ruff on PATH, else next to this interpreter (the venv's bin/)."""
    found = shutil.which("ruff")
    if found:
        return found
    candidate = Path(sys.executable).parent / "ruff"
    return str(candidate) if candidate.is_file() else None


def sandbox_user(settings: Settings) -> str | None:
    """Who sandboxed commands run as: the configured user when we are root, else ourselves."""
    return settings.sandbox_user if os.geteuid() == 0 else None


#: What setup may leave in the tree and still be carried to later working copies.
MAX_SETUP_FILES, MAX_SETUP_BYTES = 2000, 16 * 1024 * 1024


#: What Python (or pytest) picks up by itself once it is in the tree.
IMPORTABLE_SUFFIXES = (".py", ".pyc", ".pyo", ".pth", ".so", ".pyd")


def _importable(root: Path, path: str) -> bool:
    full = root / path
    return full.is_symlink() or PurePosixPath(path).suffix.lower() in IMPORTABLE_SUFFIXES


def tree_files(root: Path) -> set[str]:
    """Every regular file under `root` outside `.git` (ignored files included)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                out.add(path.relative_to(root).as_posix())
    return out


def save_setup_files(root: Path, paths: list[str], dest: Path) -> None:
    """Copy what setup wrote into the tree next to the cached environment (bounded)."""
    shutil.rmtree(dest, ignore_errors=True)
    total = 0
    for rel in paths[:MAX_SETUP_FILES]:
        src = root / rel
        size = src.stat().st_size
        if total + size > MAX_SETUP_BYTES:
            log.warning("setup wrote more than %d bytes into the tree; not all kept", total)
            break
        total += size
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)


def restore_setup_files(saved: Path, root: Path) -> list[str]:
    """Put the saved setup files into a new working copy; tracked files are never replaced.
    Returns the paths restored."""
    if not saved.is_dir():
        return []
    restored = []
    for rel in sorted(tree_files(saved)):
        target = root / rel
        if target.exists() or target.is_symlink():
            continue
        if not target.resolve().is_relative_to(root.resolve()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved / rel, target)
        restored.append(rel)
    return restored


class NoTestCommand(ValueError):
    """The repository configures no test command and does not look like it uses pytest."""


class CodeHost:
    """Where a loop's working copies come from and where its branch goes."""

    def __init__(
        self, settings: Settings, mirrors: MirrorCache, token: TokenFn, *, push: bool = True
    ) -> None:
        self.settings = settings
        self.mirrors = mirrors
        self.token = token
        #: False in local mode: the result stays in the working copy and the report.
        self.can_push = push

    @contextlib.asynccontextmanager
    async def checkout(
        self, repo: str, base: str, *, loop: str, number: int, commands: CommandsConfig
    ) -> AsyncIterator[Checkout]:
        """Fetch, then a working copy of `base` on `loopwright/<loop>-<number>`."""
        await self.mirrors.fetch(repo, await self.token())
        async with open_workspace(self.mirrors, repo, base, loop=loop, number=number) as ws:
            run_as = sandbox_user(self.settings)
            await asyncio.to_thread(grant_workspace, ws.root, run_as)
            yield Checkout(self, ws, commands)


@dataclass(kw_only=True)
class LateCheckout:
    """A chart's state whose working copy one of its stages opens (after work that needs none)
    and the chart's end closes: the chart's `workspace` is `LateCheckout.held`."""

    #: The working copy, once `open_checkout` made it.
    checkout: Checkout | None = None
    checkouts: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def open_checkout(
        self, opening: contextlib.AbstractAsyncContextManager[Checkout]
    ) -> Checkout:
        """Enter `opening` (`CodeHost.checkout(...)`); it stays open until the chart ends."""
        self.checkout = await self.checkouts.enter_async_context(opening)
        return self.checkout

    @staticmethod
    @contextlib.asynccontextmanager
    async def held(state: LateCheckout) -> AsyncIterator[None]:
        """What the chart's stages run inside: the checkout a stage opens closes after them."""
        async with state.checkouts:
            yield


class Checkout:
    def __init__(self, host: CodeHost, ws: Workspace, commands: CommandsConfig) -> None:
        self.host = host
        self.ws = ws
        self.commands = commands
        self.env: EnvInfo | None = None
        self.test_runs = 0
        #: Test files the loop itself adds (reproduction, held-out variant): every full run
        #: includes those present, even when the project's command names its own test paths.
        self.own_tests: list[str] = []
        #: Options every pytest run gets, set when the project's discovery would not collect
        #: the loop's own tests as they are named (`reproduce.placement_problem`).
        self.pytest_extra: list[str] = []
        #: Files the environment's setup wrote into the tree (kept across clean-ups).
        self.setup_files: list[str] = []
        #: Once the baseline is known: how long any later run may take (see `baseline`).
        self.run_timeout: float | None = None

    @property
    def settings(self) -> Settings:
        return self.host.settings

    @property
    def run_as(self) -> str | None:
        return sandbox_user(self.settings)

    def test_command(self) -> list[str]:
        cmd = self.commands.test_argv() or default_test_command(self.ws.root)
        if not cmd:
            raise NoTestCommand(
                "no test command: set commands.test in .github/loopwright.yml "
                "(the repository does not look like it uses pytest)"
            )
        return cmd

    async def prepare(self) -> EnvInfo:
        """The dependency environment (setup phase: network, no secrets), cached per repo.

        Setup may also write into the tree (setuptools-scm's version file, `*.egg-info` of an
        editable install): those files are kept beside the cached environment and put back
        into every later working copy that reuses it, or the project would not import there.
        """
        if self.env is None:
            before = await asyncio.to_thread(tree_files, self.ws.root)
            env = await prepare_environment(
                self.ws.root,
                repo=self.ws.full_name,
                cache_root=self.settings.data_dir / "envs",
                setup_cmds=self.commands.setup_argv(),
                timeout=self.commands.setup_timeout_seconds,
                mode=self.settings.sandbox,
                run_as=self.run_as,
            )
            saved = env.venv_host.parent / f"{env.key}.setup-files"
            if env.cache_hit:
                made = await asyncio.to_thread(restore_setup_files, saved, self.ws.root)
                await self.grant()
            else:
                made = sorted(await asyncio.to_thread(tree_files, self.ws.root) - before)
                await asyncio.to_thread(save_setup_files, self.ws.root, made, saved)
            await self.ws.exclude(made)
            self.setup_files = list(made)
            self.env = env
        return self.env

    async def grant(self) -> None:
        """Let the sandbox user read what the host just wrote (new files and directories)."""
        await asyncio.to_thread(grant_workspace, self.ws.root, self.run_as)

    async def changed_files(self, exclude: Set[str] = frozenset()) -> dict[str, str | None]:
        """The text of every path changed against base (None: deleted), but `exclude`: what a
        stage stores so a retry's fresh checkout can be put back where it left this one."""
        present = set(await self.ws.list_files())
        return {
            path: await self.ws.read_file(path) if path in present else None
            for path in sorted(self.ws.changed_paths() - exclude)
        }

    async def restore_files(self, files: Mapping[str, str | None], message: str) -> None:
        """Put `changed_files`' result back (written, or removed where None) and keep it as one
        commit; nothing when there is nothing to restore."""
        if not files:
            return
        for path, text in files.items():
            if text is not None:
                await self.ws.write_file(path, text)
        gone = {p for p, text in files.items() if text is None}
        if gone:
            await self.ws.remove_files(gone)
        await self.grant()
        await self.ws.keep(message)

    async def run_tests(self, selection: Sequence[str] = ()) -> TestRun:
        """One sandboxed test run (no network); `selection` narrows a pytest command to test
        ids or files. Files the run creates are removed afterwards, so no later commit picks
        them up."""
        env = await self.prepare()
        own = [t for t in self.own_tests if (self.ws.root / t).is_file()]
        cmd = self.test_command()
        if self.pytest_extra and pytest_position(cmd) is not None:
            cmd = [*cmd, *self.pytest_extra]
        cmd = shape_pytest_command(cmd, self.ws.root, selection=selection, extra=own)
        before = await self.ws.snapshot()
        run = await run_tests(
            self.ws.root,
            test_cmd=cmd,
            env=env,
            timeout=self.run_timeout or self.commands.test_timeout_seconds,
            mode=self.settings.sandbox,
            run_as=self.run_as,
        )
        self.test_runs += 1
        problem = await self._after_run(before)
        if problem:
            run.void(problem)
        return run

    async def _after_run(self, before: TreeSnapshot) -> str:
        """Put the tree back as it was before a sandboxed run, and say why the run cannot be
        trusted if it changed tracked files or left files Python would import (a
        `sitecustomize.py`, a `.pth`, a planted `.pyc`, a new `conftest.py`, a symlink)."""
        changed = await self.ws.changes_since(before)
        if not changed:
            return ""
        problems = []
        if changed.tracked:
            await self.ws.restore_tracked(changed.tracked)
            problems.append(
                "the run changed tracked files (" + ", ".join(sorted(changed.tracked)[:5]) + ")"
            )
        importable = sorted(p for p in changed.other if _importable(self.ws.root, p))
        if importable:
            problems.append(
                "the run left files Python would import (" + ", ".join(importable[:5]) + ")"
            )
        # New files that a commit would pick up go, and anything importable; ignored data
        # files (a cache a run writes) stay until the next clean tree, so a series of runs
        # sees the state it builds up, as a checkout would (a fix that only works on a fresh
        # tree is flaky, not fixed).
        setup = changed.other & set(self.setup_files)
        await self.ws.remove_new(changed.untracked | set(importable) | setup)
        if self.env is not None and setup:
            await self._restore_setup()
        if problems:
            log.warning("sandboxed run voided: %s", "; ".join(problems))
        return "; ".join(problems) + (
            ": code under test must not change the repository" if problems else ""
        )

    async def clean_tree(self) -> None:
        """Before a decisive run: the tree exactly as the commit has it, plus the setup files
        (restored from their saved copies), and nothing an earlier run wrote."""
        await self.prepare()
        await self.ws.scrub()
        await self._restore_setup()

    async def _restore_setup(self) -> None:
        assert self.env is not None
        saved = self.env.venv_host.parent / f"{self.env.key}.setup-files"
        await asyncio.to_thread(restore_setup_files, saved, self.ws.root)
        await self.grant()

    async def run_command(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the sandbox wall clock
    ) -> SandboxResult:
        """One command in the sandbox (no network) with the project's environment, e.g. the
        command a failing CI step ran. Tools loopwright itself ships (ruff) come after the
        project's own on PATH. Files the command creates are removed afterwards; changes to
        tracked files stay (that is how a fixer like `ruff check --fix` works)."""
        env = await self.prepare()
        binds = list(env.binds)
        path = list(env.path_prepend)
        mode = self.settings.sandbox
        ruff = find_ruff()
        if ruff:
            if mode == "bwrap":
                binds.append(Bind(Path(ruff), f"{SANDBOX_TOOLS}/ruff"))
                path.append(SANDBOX_TOOLS)
            else:
                path.append(str(Path(ruff).parent))
        before = await self.ws.untracked()
        result = await run_sandboxed(
            list(argv),
            workdir=self.ws.root,
            timeout=timeout or self.commands.test_timeout_seconds,
            network=False,
            binds=binds,
            env_extra={**env.env, "NO_COLOR": "1", "RUFF_NO_CACHE": "true"},
            path_prepend=path,
            mode=mode,
            run_as=self.run_as,
        )
        left = await self.ws.untracked() - before
        if left:
            await self.ws.remove_files(left)
        return result

    async def baseline(self) -> tuple[TestRun, bool]:
        """The suite on the base commit, cached per (repo, commit, command); (run, cache hit).

        It also sets how long every later run may take: a candidate that makes the suite hang
        (an infinite loop is an easy mistake, and a cheap attack) is killed after
        `RUN_TIMEOUT_FACTOR` times the baseline's duration, not after `test_timeout_seconds`."""
        env = await self.prepare()
        run, hit = await baseline_run(
            self.ws.root,
            cache_dir=self.settings.data_dir,
            repo=self.ws.full_name,
            commit=self.ws.base,
            test_cmd=self.test_command(),
            env=env,
            timeout=self.commands.test_timeout_seconds,
            mode=self.settings.sandbox,
            run_as=self.run_as,
        )
        if run.junit_found and not run.timed_out:
            self.run_timeout = min(
                float(self.commands.test_timeout_seconds),
                max(RUN_TIMEOUT_FLOOR_S, RUN_TIMEOUT_FACTOR * run.duration_s),
            )
        return run, hit

    async def push(self) -> str | None:
        """Push the loop's branch (only `loopwright/*`, never `.github/workflows/`); None when
        this host does not push (local mode)."""
        if not self.host.can_push:
            return None
        return await self.ws.push(await self.host.token())


def local_host(settings: Settings, repo_path: Path, name: str) -> CodeHost:
    """Local mode: clone a checkout on disk (its committed HEAD), never push."""

    async def no_token() -> str:
        return ""

    mirrors = MirrorCache(settings.data_dir, remote_urls={name: str(repo_path.resolve())})
    return CodeHost(settings, mirrors, no_token, push=False)
