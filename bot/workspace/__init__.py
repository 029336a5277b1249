"""Ephemeral git workspaces for jobs: a bare mirror per repository, a cheap working copy per job.

Layout under the data directory:

    mirrors/<owner>/<repo>.git          bare mirror, fetched incrementally over HTTPS
    mirrors/<owner>/<repo>.git.lock     flock: one fetch per repository across processes (bot.flock)
    workspaces/<owner>/<repo>/<slot>/
        lock                            flock held by the job using the slot
        owner                           JSON {pid, job}; present only while a job holds the slot
        tree/                           the working copy (`tree/.git` borrows the mirror's objects)

Why this shape (numbers in docs/workspace.md): the working copy's `.git` lists the mirror's object
directory as an *alternate*, so making one copies no objects at all; what costs time is writing
the ~N files of the tree. A finished job's slot is reset and kept warm (up to `keep_warm` per
repository), so the next job on the same repository only rewrites the files that differ between
the two base commits. `keep_warm=0` gives a fresh checkout per job, deleted when it ends.

Security: the installation token only ever lives in memory (a pygit2 credential callback), never
in a URL, a config file or a log; every file operation is confined to the tree; pushes go only to
`loopwright/*` and never carry a change under `.github/workflows/`; git hooks and fsmonitor are
disabled in every workspace config. We never shell out to git here.

The parts: `base` (errors, names, the token callback, the hardened config), `mirror`
(`MirrorCache`), `working_copy` (`Workspace`, snapshots, the push policy), `slots`
(`open_workspace`, keeping slots warm, `sweep_stale`). Callers import from `bot.workspace`, which
re-exports what they use.
"""

from bot.workspace.base import (
    DEFAULT_REFSPECS,
    AuthenticationError,
    EditError,
    FetchError,
    ProtectedBranchError,
    ProtectedPathError,
    PushError,
    PushRefused,
    SearchTextNotFound,
    SearchTextNotUnique,
    UnsafePathError,
    WorkspaceError,
    branch_name,
)
from bot.workspace.mirror import MirrorCache
from bot.workspace.slots import open_workspace, sweep_stale
from bot.workspace.working_copy import SearchHit, TreeChanges, TreeSnapshot, Workspace

__all__ = [
    "DEFAULT_REFSPECS",
    "AuthenticationError",
    "EditError",
    "FetchError",
    "MirrorCache",
    "ProtectedBranchError",
    "ProtectedPathError",
    "PushError",
    "PushRefused",
    "SearchHit",
    "SearchTextNotFound",
    "SearchTextNotUnique",
    "TreeChanges",
    "TreeSnapshot",
    "UnsafePathError",
    "Workspace",
    "WorkspaceError",
    "branch_name",
    "open_workspace",
    "sweep_stale",
]
