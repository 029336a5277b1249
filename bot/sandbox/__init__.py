"""Run untrusted repository code: bubblewrap jail, rlimits, wall-clock kill, capped output.

Every command that executes code from a repository under test (its setup, its tests, a CI
command being repaired) goes through `run_sandboxed`. See docs/sandbox.md for the threat model;
the short version:

* no network (unless the caller asks, which only the dependency *setup* phase does),
* a cleared environment - the bwrap process itself is started with a minimal environment too,
  because bwrap's own process is pid 1 inside and its environment is readable as /proc/1/environ,
* system directories read-only, the workspace read-write at `/work`, its `.git` read-only,
  a private `/tmp`,
* rlimits (CPU seconds, address space, file size, open files, processes),
* a wall-clock timeout that kills the whole process tree, also when the caller is cancelled or
  dies (`--die-with-parent` plus a pid namespace),
* when loopwright runs as root, the command runs as an unprivileged user (`run_as`), because
  RLIMIT_NPROC does not bind uid 0.

Two ways to launch bubblewrap, chosen by who we are:

* not root: plain unprivileged bubblewrap (user namespace), command runs as ourselves;
* root with `run_as`: bubblewrap runs as root (so it can bind paths under /root, such as a pyenv
  interpreter or the data directory, that the sandbox user cannot traverse), keeps only
  CAP_SETUID/CAP_SETGID for the first process, which is `setpriv` switching to the sandbox user
  with an empty capability bounding set before exec'ing the command.

The parts: `base` (limits, binds, results, errors, the sandbox user), `bwrap` (the bubblewrap
command line), `jail` (`run_sandboxed`), `testdeps` (the default setup commands, read from a
repository's config files), `envcache` (`prepare_environment`: the cached virtualenvs),
`command` (`loopwright sandbox`). Callers import from `bot.sandbox`, which re-exports what they
use.
"""

from bot.sandbox.base import (
    DEFAULT_OUTPUT_CAP,
    SANDBOX_VENV,
    Bind,
    Limits,
    SandboxError,
    SandboxMode,
    SandboxResult,
    SandboxUnavailable,
    grant_workspace,
    resolve_user,
    sandbox_path,
)
from bot.sandbox.command import cli
from bot.sandbox.envcache import EnvInfo, EnvironmentSetupFailed, prepare_environment, repo_slug
from bot.sandbox.jail import run_sandboxed
from bot.sandbox.testdeps import default_setup_commands

__all__ = [
    "DEFAULT_OUTPUT_CAP",
    "SANDBOX_VENV",
    "Bind",
    "EnvInfo",
    "EnvironmentSetupFailed",
    "Limits",
    "SandboxError",
    "SandboxMode",
    "SandboxResult",
    "SandboxUnavailable",
    "cli",
    "default_setup_commands",
    "grant_workspace",
    "prepare_environment",
    "repo_slug",
    "resolve_user",
    "run_sandboxed",
    "sandbox_path",
]
