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
`command` (`loopwright sandbox`). Import from `bot.sandbox`: this is the public API.
"""

from bot.sandbox.base import (
    BASE_PATH,
    DEFAULT_OUTPUT_CAP,
    SANDBOX_TMP,
    SANDBOX_VENV,
    SANDBOX_WORKDIR,
    Bind,
    Limits,
    SandboxError,
    SandboxMode,
    SandboxResult,
    SandboxUnavailable,
    SandboxUser,
    grant_workspace,
    python_prefix,
    resolve_user,
    sandbox_path,
)
from bot.sandbox.bwrap import DEFAULT_BWRAP, ETC_ENTRIES, INSTALL_HINT, SYSTEM_DIRS
from bot.sandbox.command import cli
from bot.sandbox.envcache import (
    DEPENDENCY_GLOBS,
    SYSTEM_CA_BUNDLE,
    EnvInfo,
    EnvironmentSetupFailed,
    dependency_files,
    environment_key,
    prepare_environment,
    repo_slug,
    system_ca_env,
)
from bot.sandbox.jail import run_sandboxed
from bot.sandbox.testdeps import default_setup_commands

__all__ = [
    "BASE_PATH",
    "DEFAULT_BWRAP",
    "DEFAULT_OUTPUT_CAP",
    "DEPENDENCY_GLOBS",
    "ETC_ENTRIES",
    "INSTALL_HINT",
    "SANDBOX_TMP",
    "SANDBOX_VENV",
    "SANDBOX_WORKDIR",
    "SYSTEM_CA_BUNDLE",
    "SYSTEM_DIRS",
    "Bind",
    "EnvInfo",
    "EnvironmentSetupFailed",
    "Limits",
    "SandboxError",
    "SandboxMode",
    "SandboxResult",
    "SandboxUnavailable",
    "SandboxUser",
    "cli",
    "default_setup_commands",
    "dependency_files",
    "environment_key",
    "grant_workspace",
    "prepare_environment",
    "python_prefix",
    "repo_slug",
    "resolve_user",
    "run_sandboxed",
    "sandbox_path",
    "system_ca_env",
]
