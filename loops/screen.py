"""Screen: a pure, deterministic check of a candidate change before it is kept or pushed.

The patch loop keeps an attempt only if objective tests pass, so a "fix" that teaches the code
to notice it is under test, patches the test runner, rewrites its report or ends the process
before the tests run would be kept too. `screen_change` looks at what a change *adds* (whole new
files, and findings in the new text that the base text does not have) and reports it as
`ScreenHit`s, one line each that a model and a maintainer can read (`ScreenHit.describe`).

Rules (`ScreenHit.rule`):

- ``protected-path``: a changed, added or deleted path the ``protected`` callback matches
  (unless the loop wrote it: ``allowed``), and, even without a callback, pytest and interpreter
  startup files: ``conftest.py``, ``sitecustomize.py``, ``usercustomize.py``, ``pytest.ini``,
  ``.pytest.ini``, ``*.pth``, bytecode (``*.pyc``, ``*.pyo``, ``__pycache__/``) and
  ``.github/workflows/``.
- ``test-detection``: code that notices a test run: ``PYTEST_*``/``UNITTEST`` variables,
  ``"pytest" in sys.modules``, ``sys.argv`` or the call stack checked against test names,
  ``sys._called_from_test``, ``find_spec("pytest")``.
- ``pytest-internals``: project source (not test files, not test-support modules) importing
  or patching pytest, ``_pytest``, ``pluggy`` or ``unittest``, patching ``doctest``, defining
  pytest hooks or ``pytest_plugins``.
- ``sys-modules``: changing ``sys.modules`` or the import hooks, patching builtins or the
  standard library's process functions, ``sys.settrace``/``setprofile``, ``gc.get_objects``.
- ``report-file``: ``junit``, ``.xml`` writes, ``PYTEST_ADDOPTS``, ``/proc/self/fd``,
  ``os.dup2``, writes to file-descriptor numbers, ``atexit.register``.
- ``startup-hook``: sitecustomize/usercustomize, ``.pth`` files or anything written into
  site-packages, ``site.addsitedir``, writing bytecode, ``os.symlink``.
- ``exit-at-import``: ``os._exit``, ``os.fork``, ``os.abort``, the process killing itself, and,
  at import time (module level or a class body, outside ``if __name__ == "__main__":``),
  ``sys.exit``/``exit()``/``quit()``/``raise SystemExit`` and ``signal`` handlers or alarms.

Python files are read with `ast`; a file that does not parse is read line by line with regular
expressions instead. Other files only meet the path rule. Precision matters as much as recall (a
false hit refuses a real fix), so:

- only what the change adds is reported: findings of the base and the new text are compared as
  a multiset keyed by rule and (whitespace-normalised) line, so moved, re-indented or requoted
  code is not new, while code moved into import time is; an added file that is mostly a deleted
  one (a move) is compared with it;
- docstrings and comments are never read, names are resolved through the file's imports (a
  local variable called `gc` is not the gc module), and a string counts as "test-ish" only
  where it is compared (``in``, ``==``, ``startswith``, ``re.search``...), not where it is printed;
- established use: a file whose base text already does the same kind of thing (a lazy-import
  module that assigns into ``sys.modules``, a process module that forks, a script that exits at
  import time) may do it again. Test detection, ``PYTEST_ADDOPTS`` and patching pytest or the
  process functions never are;
- test files (``test_*.py``, ``*_test.py``, ``tests/``, the loop's ``allowed`` files, pytest
  plugin modules) are protected and validated elsewhere: they are screened only for what they
  do at import time (and ``PYTEST_ADDOPTS``), never for using pytest or mocking modules.

Known limits: it reads code, it does not run it. Indirection (``getattr(os, "_exit")``,
``__import__("os")``, strings built at run time other than by ``+`` of literals) is not followed.
"""

from __future__ import annotations

import ast
import difflib
import re
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

TEST_DETECTION = "test-detection"
PYTEST_INTERNALS = "pytest-internals"
SYS_MODULES = "sys-modules"
REPORT_FILE = "report-file"
STARTUP_HOOK = "startup-hook"
EXIT_AT_IMPORT = "exit-at-import"
PROTECTED_PATH = "protected-path"

RULES: tuple[str, ...] = (
    PROTECTED_PATH,
    TEST_DETECTION,
    PYTEST_INTERNALS,
    SYS_MODULES,
    REPORT_FILE,
    STARTUP_HOOK,
    EXIT_AT_IMPORT,
)

_PHRASES = {
    PROTECTED_PATH: "touches a protected path",
    TEST_DETECTION: "detects a test run",
    PYTEST_INTERNALS: "imports or patches test-runner internals",
    SYS_MODULES: "patches the interpreter",
    REPORT_FILE: "touches test reports or the runner's output",
    STARTUP_HOOK: "installs an interpreter startup hook",
    EXIT_AT_IMPORT: "exits or kills the process",
}

_TEXT_CHARS = 200


@dataclass(frozen=True)
class ScreenHit:
    """One thing a change adds that the loop must not keep."""

    path: str
    #: Line number in the new file; 0 for a whole-file hit.
    line: int
    #: One of `RULES`.
    rule: str
    #: The offending line (stripped, at most 200 characters); empty for a whole-file hit.
    text: str
    #: What matched, e.g. ``PYTEST_CURRENT_TEST`` or ``assigns into sys.modules``.
    detail: str = ""

    def describe(self) -> str:
        """One line, e.g. ``calc/words.py:12: detects a test run (PYTEST_CURRENT_TEST): ...``."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        what = _PHRASES.get(self.rule, self.rule)
        if self.detail:
            what = f"{what} ({self.detail})"
        return f"{where}: {what}: {self.text}" if self.text else f"{where}: {what}"


def screen_change(
    changes: Mapping[str, tuple[str | None, str | None]],
    *,
    protected: Callable[[str], str | None] | None = None,
    allowed: Collection[str] = (),
) -> list[ScreenHit]:
    """Screen a change: what it adds that looks like gaming the tests, sorted by path and line.

    `changes` maps each path to (its text on base or None if new, its text now or None if
    deleted), for the whole final tree against base, not only the last commit. `protected(path)`
    returns the protected pattern `path` matches, or None; `allowed` are paths the loop itself
    wrote (its reproduction tests), exempt from protected-path hits and read as test files.
    """
    allowed_set = {_norm(p) for p in allowed}
    deleted = [old for old, new in changes.values() if old is not None and new is None]
    hits: list[ScreenHit] = []
    for raw_path in sorted(changes):
        old, new = changes[raw_path]
        if old == new:
            continue
        path = _norm(raw_path)
        whole = _whole_file_hit(path, old, new, protected, path in allowed_set)
        if whole is not None:
            hits.append(whole)
            continue
        if new is None or not _is_python(path, new):
            continue
        base = old if old is not None else _renamed_from(new, deleted)
        hits.extend(_content_hits(path, base, new, path in allowed_set))
    hits.sort(key=lambda h: (h.path, h.line, h.rule, h.detail))
    return hits


# --- paths ------------------------------------------------------------------------------------

_STARTUP_NAMES = {
    "conftest.py": "conftest.py",
    "sitecustomize.py": "sitecustomize.py",
    "usercustomize.py": "usercustomize.py",
    "pytest.ini": "pytest.ini",
    ".pytest.ini": ".pytest.ini",
}
_BYTECODE_SUFFIXES = (".pyc", ".pyo")
_PYTHON_SUFFIXES = (".py", ".pyw", ".pyx")
_TEST_DIRS = {"tests", "test"}
_SUPPORT_NAMES = {"testing", "testutils", "testutil", "testing_utils", "test_utils"}


def _norm(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _builtin_protected(path: str) -> str | None:
    p = PurePosixPath(path)
    if p.name in _STARTUP_NAMES:
        return _STARTUP_NAMES[p.name]
    if p.suffix == ".pth":
        return "*.pth"
    if p.suffix in _BYTECODE_SUFFIXES:
        return f"*{p.suffix}"
    if "__pycache__" in p.parts:
        return "__pycache__/"
    if path.startswith(".github/workflows/"):
        return ".github/workflows/"
    return None


def _renamed_from(new: str, deleted: list[str]) -> str | None:
    """For a new file: the deleted file it mostly is (a move), to compare it with; else None."""
    best: tuple[float, str] | None = None
    new_lines = new.splitlines()
    for old in deleted:
        matcher = difflib.SequenceMatcher(None, old.splitlines(), new_lines, autojunk=False)
        if matcher.real_quick_ratio() < _RENAME_RATIO or matcher.quick_ratio() < _RENAME_RATIO:
            continue
        ratio = matcher.ratio()
        if ratio >= _RENAME_RATIO and (best is None or ratio > best[0]):
            best = (ratio, old)
    return best[1] if best is not None else None


_RENAME_RATIO = 0.6


def _whole_file_hit(
    path: str,
    old: str | None,
    new: str | None,
    protected: Callable[[str], str | None] | None,
    allowed: bool,
) -> ScreenHit | None:
    verb = "added" if old is None else "deleted" if new is None else "changed"
    pattern = _builtin_protected(path)
    if pattern is not None and new is None and pattern in ("*.pyc", "*.pyo", "__pycache__/"):
        pattern = None  # deleting stale bytecode is harmless
    if pattern is None and protected is not None and not allowed:
        pattern = protected(path)
    if pattern is None:
        return None
    return ScreenHit(path, 0, PROTECTED_PATH, "", f"{verb}; matches {pattern}")


def _is_python(path: str, text: str) -> bool:
    p = PurePosixPath(path)
    if p.suffix in _PYTHON_SUFFIXES:
        return True
    if p.suffix:
        return False
    first = text.split("\n", 1)[0]
    return first.startswith("#!") and "python" in first


def _is_test_file(path: str) -> bool:
    """Test modules, and modules of a pytest plugin or of pytest itself: pytest-aware by design."""
    p = PurePosixPath(path)
    name = p.name
    if name in ("conftest.py", "tests.py") or name.startswith("test_") or name.endswith("_test.py"):
        return True
    dirs = p.parts[:-1]
    if any(d in _TEST_DIRS for d in dirs):
        return True
    if p.stem.startswith(("pytest", "_pytest")) or p.stem.endswith("_pytest"):
        return True  # aiohttp/pytest_plugin.py, numpy/_pytesttester.py
    return any(d.startswith(("pytest_", "pytest-", "_pytest")) or d == "pytest" for d in dirs)


def _is_test_support(path: str) -> bool:
    """Test helpers shipped with the project (``pkg/testing.py``): they may import unittest."""
    p = PurePosixPath(path)
    return p.stem in _SUPPORT_NAMES or any(d in _SUPPORT_NAMES for d in p.parts[:-1])


# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    rule: str
    line: int
    detail: str
    #: Established-use kind: a file whose base text has a finding of the same rule and kind may
    #: add more. None: never excused.
    kind: str | None = None


@dataclass(frozen=True)
class _FileInfo:
    path: str
    #: Exempt from test-detection, pytest-internals and sys-modules.
    test_file: bool
    #: Exempt from pytest-internals.
    support: bool
    #: `__main__.py`, or a script (shebang) on base: exits at module level are its job.
    script: bool


def _content_hits(path: str, old: str | None, new: str, allowed: bool) -> list[ScreenHit]:
    old_script = old is not None and old.startswith("#!")
    info = _FileInfo(
        path=path,
        test_file=allowed or _is_test_file(path),
        support=_is_test_support(path),
        script=PurePosixPath(path).name == "__main__.py" or old_script,
    )
    new_findings = _findings(new, info)
    if not new_findings:
        return []
    old_findings = _findings(old, info) if old is not None else []
    new_lines = new.splitlines()
    old_lines = old.splitlines() if old is not None else []

    established = {(f.rule, f.kind) for f in old_findings if f.kind is not None}
    old_counts = Counter(_key(f, old_lines) for f in old_findings)
    groups: dict[tuple[str, str, str], list[_Finding]] = {}
    for f in new_findings:
        if f.kind is not None and (f.rule, f.kind) in established:
            continue
        groups.setdefault(_key(f, new_lines), []).append(f)

    inserted: set[int] | None = None
    kept: list[_Finding] = []
    for key, found in groups.items():
        surplus = len(found) - old_counts.get(key, 0)
        if surplus <= 0:
            continue
        if surplus < len(found):
            # Some of these were there before: report the ones on lines the diff inserted.
            if inserted is None:
                inserted = _inserted_lines(old_lines, new_lines)
            found = sorted(found, key=lambda f: (f.line not in inserted, f.line))[:surplus]
        kept.extend(found)
    # One hit per line and rule: `"PYTEST_" + "CURRENT_TEST"` is one thing, not two.
    merged: dict[tuple[int, str], list[str]] = {}
    for f in sorted(kept, key=lambda f: (f.line, f.rule, f.detail)):
        details = merged.setdefault((f.line, f.rule), [])
        if f.detail not in details:
            details.append(f.detail)
    for details in merged.values():
        # "PYTEST_" is a piece of "PYTEST_CURRENT_TEST": name the whole only
        details[:] = [d for d in details if not any(o != d and o.startswith(d) for o in details)]
    return [
        ScreenHit(path, line, rule, _line(new_lines, line).strip()[:_TEXT_CHARS], ", ".join(d))
        for (line, rule), d in merged.items()
    ]


def _key(f: _Finding, lines: list[str]) -> tuple[str, str, str]:
    normalised = re.sub(r"\s+", "", _line(lines, f.line)).replace("'", '"')
    return f.rule, f.detail, normalised


def _line(lines: list[str], n: int) -> str:
    return lines[n - 1] if 0 < n <= len(lines) else ""


def _inserted_lines(old: list[str], new: list[str]) -> set[int]:
    """1-based numbers of the lines of `new` that difflib sees as inserted or replaced."""
    out: set[int] = set()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("insert", "replace"):
            out.update(range(j1 + 1, j2 + 1))
    return out


def _findings(text: str, info: _FileInfo) -> list[_Finding]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        found = _RegexScanner(info).scan(text)
    else:
        found = _AstScanner(info, tree).scan()
    return _dedupe(found)


def _dedupe(found: Iterable[_Finding]) -> list[_Finding]:
    seen: set[tuple[str, int, str]] = set()
    out: list[_Finding] = []
    for f in found:
        k = (f.rule, f.line, f.detail)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out


# --- shared vocabulary ------------------------------------------------------------------------

#: Words in a string that name a test run: "pytest", "unittest", "test", "tests", "test_x",
#: "x_test", "TestCase", not "latest", "contest", "testing".
_TESTISH = re.compile(
    r"(?i)(?:py\.?test|unittest|testcase|(?<![a-z])nose2?(?![a-z])|(?<![a-z])tests?(?![a-z]))"
)
#: Module names whose presence means a test runner.
_TEST_MODULE = re.compile(r"^(?:_?pytest|py\.test|unittest|pluggy|nose2?|doctest)(?:\.|$)")
_PYTEST_VAR = re.compile(r"PYTEST_[A-Z0-9_]*")
_RUNNER_ROOTS = ("pytest", "_pytest", "pluggy", "unittest")
_PATCH_ROOTS = (*_RUNNER_ROOTS, "doctest")

_INTROSPECTION_CALLS = {
    "inspect.stack",
    "inspect.currentframe",
    "inspect.getouterframes",
    "inspect.getframeinfo",
    "inspect.trace",
    "sys._getframe",
    "traceback.extract_stack",
    "traceback.walk_stack",
    "traceback.format_stack",
    "traceback.print_stack",
}
_FRAME_ATTRS = {"f_back", "co_filename", "f_globals", "f_code"}
_SYS_MODULES_METHODS = {
    "pop",
    "popitem",
    "update",
    "setdefault",
    "clear",
    "__setitem__",
    "__delitem__",
}
_TRACE_CALLS = {
    "sys.settrace",
    "sys.setprofile",
    "threading.settrace",
    "threading.setprofile",
    "threading.settrace_all_threads",
    "threading.setprofile_all_threads",
}
_GC_CALLS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents"}
_IMPORT_HOOKS = {"sys.meta_path", "sys.path_hooks", "sys.path_importer_cache"}
#: Module attributes no fix has to rebind: the process's exits and the import system.
_PATCHED_ATTRS = {
    "sys.modules",
    "sys.exit",
    "sys.settrace",
    "sys.setprofile",
    "sys._getframe",
    "os._exit",
    "os.kill",
    "os.getpid",
    *_IMPORT_HOOKS,
}
_PATCHED_MODULES = ("builtins", "atexit", "gc", "importlib", "inspect")
_SITE_CALLS = {
    "site.addsitedir",
    "site.addpackage",
    "site.main",
    "site.execsitecustomize",
    "site.execusercustomize",
}
_SITE_DIR_CALLS = {
    "site.getsitepackages",
    "site.getusersitepackages",
    "sysconfig.get_path",
    "sysconfig.get_paths",
    "distutils.sysconfig.get_python_lib",
}
_BYTECODE_CALLS = {
    "py_compile.compile",
    "compileall.compile_dir",
    "compileall.compile_file",
    "compileall.compile_path",
    "marshal.dump",
}
_OPEN_CALLS = {"open", "io.open", "codecs.open", "builtins.open"}
_WRITE_CALLS = {
    "shutil.copy",
    "shutil.copy2",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.move",
    "os.rename",
    "os.replace",
    "os.makedirs",
    "os.mkdir",
    "os.symlink",
    "os.link",
}
_WRITE_METHODS = {"write_text", "write_bytes", "symlink_to", "hardlink_to", "touch", "mkdir"}
_SIGNAL_AT_IMPORT = {
    "signal.signal",
    "signal.alarm",
    "signal.setitimer",
    "signal.siginterrupt",
    "signal.set_wakeup_fd",
    "signal.pthread_sigmask",
    "signal.pause",
}
_EXIT_CALLS = {"sys.exit", "exit", "quit", "builtins.exit", "builtins.quit"}
_BUILTINS_ALIASES = {"__builtin__": "builtins", "__builtins__": "builtins"}


def _string_findings(s: str, line: int, info: _FileInfo) -> Iterator[_Finding]:
    """Rules that a string in code triggers wherever it is."""
    if "PYTEST_ADDOPTS" in s:
        yield _Finding(REPORT_FILE, line, "PYTEST_ADDOPTS")
    if not info.test_file:
        for var in _PYTEST_VAR.findall(s):
            if var != "PYTEST_ADDOPTS":
                yield _Finding(TEST_DETECTION, line, var)
        if "UNITTEST" in s:
            yield _Finding(TEST_DETECTION, line, "UNITTEST")
        if s.startswith("_pytest"):
            yield _Finding(TEST_DETECTION, line, "'_pytest'")
        if "_called_from_test" in s:
            yield _Finding(TEST_DETECTION, line, "_called_from_test")
    low = s.lower()
    if "junit" in low:
        yield _Finding(REPORT_FILE, line, "junit", "junit")
    if "/proc/self/fd" in s or "/dev/fd/" in s:
        yield _Finding(REPORT_FILE, line, "/proc/self/fd", "procfd")
    if "sitecustomize" in low or "usercustomize" in low:
        yield _Finding(STARTUP_HOOK, line, "sitecustomize", "sitecustomize")


# --- the ast scanner --------------------------------------------------------------------------

#: Names that mean the builtin even when nothing imports them.
_BUILTIN_NAMES = {
    "exit",
    "quit",
    "open",
    "setattr",
    "delattr",
    "vars",
    "__import__",
    "SystemExit",
    "__builtins__",
}


@dataclass(frozen=True)
class _Ctx:
    #: The innermost def or lambda, None at module level (and in class bodies).
    func: ast.AST | None = None
    main_guard: bool = False
    type_checking: bool = False

    @property
    def import_time(self) -> bool:
        """Runs when the module is imported: module level or a class body, not `__main__`."""
        return self.func is None and not self.main_guard


@dataclass
class _Scope:
    """What one function (or the module's own code) holds, for rules that need two parts."""

    module: bool
    introspection: list[int] = field(default_factory=list)
    testish: bool = False
    writes: bool = False
    #: Site directories from calls (`site.getsitepackages()`), and from strings.
    site_calls: list[int] = field(default_factory=list)
    site_strings: list[int] = field(default_factory=list)
    pth: list[int] = field(default_factory=list)
    bytecode_calls: list[int] = field(default_factory=list)


class _AstScanner:
    def __init__(self, info: _FileInfo, tree: ast.Module) -> None:
        self.info = info
        self.tree = tree
        self.aliases = _aliases(tree)
        self.found: list[_Finding] = []
        self.scopes: dict[int, _Scope] = {}
        #: String constants already read as a module name (`import_module("pytest")`).
        self.consumed: set[int] = set()

    def scan(self) -> list[_Finding]:
        for node, ctx in _walk(self.tree, _Ctx()):
            self._visit(node, ctx)
        for scope in self.scopes.values():
            self._scope(scope)
        return self.found

    # helpers

    def add(self, rule: str, node: ast.AST, detail: str, kind: str | None, ctx: _Ctx) -> None:
        """Record a finding. A test file is screened only for what it does at import time
        (its tests are protected and validated elsewhere), and for PYTEST_ADDOPTS."""
        if self.info.test_file and not ctx.import_time and detail != "PYTEST_ADDOPTS":
            return
        self.found.append(_Finding(rule, getattr(node, "lineno", 0), detail, kind))

    def qual(self, node: ast.AST) -> str | None:
        return _qualname(node, self.aliases)

    def scope(self, ctx: _Ctx) -> _Scope:
        key = id(ctx.func) if ctx.func is not None else 0
        return self.scopes.setdefault(key, _Scope(module=ctx.func is None))

    # per node

    def _visit(self, node: ast.AST, ctx: _Ctx) -> None:
        info = self.info
        if isinstance(node, ast.stmt):
            self._statement(node, ctx)
        if any(_TESTISH.search(c) for c in _compared(node, self.aliases)):
            self.scope(ctx).testish = True
        if isinstance(node, ast.Call):
            self._call(node, ctx)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self._import(node, ctx)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            self._assign(node, ctx)
        elif isinstance(node, ast.Raise) and ctx.import_time and not info.script:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if exc is not None and self.qual(exc) == "SystemExit":
                self.add(EXIT_AT_IMPORT, node, "raise SystemExit at import time", "exit", ctx)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not info.test_file and ctx.func is None and node.name.startswith("pytest_"):
                self.add(PYTEST_INTERNALS, node, f"defines the pytest hook {node.name}", None, ctx)
        elif isinstance(node, (ast.Attribute, ast.Name)):
            q = self.qual(node)
            if q == "atexit.register":
                self.add(REPORT_FILE, node, "atexit.register", "atexit", ctx)
            elif q == "site.USER_SITE":
                self.scope(ctx).site_calls.append(node.lineno)
            if isinstance(node, ast.Attribute):
                if node.attr == "_called_from_test" and not info.test_file:
                    self.add(TEST_DETECTION, node, "_called_from_test", None, ctx)
                if node.attr in _FRAME_ATTRS:
                    self.scope(ctx).introspection.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in self.consumed:
                self._string(node.value, node, ctx)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            folded = _fold(node)
            if folded is not None:
                self._string(folded, node, ctx)

    def _string(self, s: str, node: ast.AST, ctx: _Ctx) -> None:
        line = getattr(node, "lineno", 0)
        for f in _string_findings(s, line, self.info):
            self.add(f.rule, node, f.detail, f.kind, ctx)
        scope = self.scope(ctx)
        if re.search(r"\.pth\b", s.lower()):
            scope.pth.append(line)
        if _SITE_DIR_STRING.search(s):
            scope.site_strings.append(line)

    def _call(self, node: ast.Call, ctx: _Ctx) -> None:
        info = self.info
        q = self.qual(node.func)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        owner = self.qual(receiver) if receiver is not None else None
        scope = self.scope(ctx)
        if _is_write_call(node, q, method):
            scope.writes = True
            if any(".xml" in s.lower() for s in _strings(node)):
                self.add(REPORT_FILE, node, "writes an .xml file", "xml", ctx)
        if q is None and method is None:
            return
        first = node.args[0] if node.args else None
        # exit-at-import
        if q == "os._exit":
            self.add(EXIT_AT_IMPORT, node, "os._exit", "os._exit", ctx)
        elif q in ("os.fork", "os.forkpty"):
            self.add(EXIT_AT_IMPORT, node, "os.fork", "fork", ctx)
        elif q == "os.abort":
            self.add(EXIT_AT_IMPORT, node, "os.abort", "abort", ctx)
        elif q in ("os.kill", "os.killpg") and first is not None and self._own_pid(first):
            self.add(EXIT_AT_IMPORT, node, "kills its own process", "selfkill", ctx)
        elif q in ("signal.raise_signal", "signal.pthread_kill"):
            self.add(EXIT_AT_IMPORT, node, "signals its own process", "selfkill", ctx)
        elif q in _EXIT_CALLS and ctx.import_time and not info.script:
            self.add(EXIT_AT_IMPORT, node, f"{q} at import time", "exit", ctx)
        elif q in _SIGNAL_AT_IMPORT and ctx.import_time:
            self.add(EXIT_AT_IMPORT, node, f"{q} at import time", "signal", ctx)
        # sys-modules (never for test files: mocking modules is what tests do)
        if not info.test_file:
            if owner == "sys.modules" and method in _SYS_MODULES_METHODS:
                self.add(SYS_MODULES, node, f"sys.modules.{method}", "sys.modules", ctx)
            elif owner in _IMPORT_HOOKS and method in ("insert", "append", "extend"):
                self.add(SYS_MODULES, node, f"installs an import hook ({owner})", "hooks", ctx)
            elif q in _TRACE_CALLS or (q or "").startswith("sys.monitoring."):
                self.add(SYS_MODULES, node, str(q), "trace", ctx)
            elif q in _GC_CALLS:
                self.add(SYS_MODULES, node, str(q), "gc", ctx)
            elif q in ("setattr", "delattr") and first is not None:
                target = self.qual(first)
                if target is not None and _root(target) == "builtins":
                    self.add(SYS_MODULES, node, f"patches builtins ({q})", "builtins", ctx)
                elif target is not None and _root(target) in _PATCH_ROOTS and not info.support:
                    self.add(PYTEST_INTERNALS, node, f"patches {target}", None, ctx)
            elif method in ("update", "__setitem__", "setdefault") and receiver is not None:
                if _is_builtins_dict(receiver, self.aliases):
                    self.add(SYS_MODULES, node, "patches builtins", "builtins", ctx)
        # dynamic imports and look-ups of the runner
        if q in ("importlib.import_module", "__import__") and isinstance(first, ast.Constant):
            if isinstance(first.value, str) and _TEST_MODULE.match(first.value):
                self.consumed.add(id(first))
                if not info.test_file and not info.support and first.value != "doctest":
                    self.add(PYTEST_INTERNALS, node, f"imports {first.value}", None, ctx)
        if q in ("importlib.util.find_spec", "pkgutil.find_loader", "importlib.find_loader"):
            if not info.test_file and any(_TEST_MODULE.match(s) for s in _strings(node)):
                self.add(TEST_DETECTION, node, f"{q} of a test runner", None, ctx)
        # report-file
        if q == "os.dup2":
            self.add(REPORT_FILE, node, "os.dup2", "dup2", ctx)
        elif q in ("os.write", "os.fdopen", *_OPEN_CALLS) and _is_int(first):
            self.add(REPORT_FILE, node, "writes to a file-descriptor number", "fd", ctx)
        # startup-hook
        if q in _SITE_CALLS:
            self.add(STARTUP_HOOK, node, str(q), "site", ctx)
        elif q in _SITE_DIR_CALLS:
            if q != "sysconfig.get_path" or any(
                s in ("purelib", "platlib") for s in _strings(node)
            ):
                scope.site_calls.append(node.lineno)
        elif q in _BYTECODE_CALLS:
            self.add(STARTUP_HOOK, node, f"writes bytecode ({q})", "bytecode", ctx)
        elif q == "importlib.util.cache_from_source":
            scope.bytecode_calls.append(node.lineno)
        if q == "os.symlink" or method == "symlink_to":
            self.add(STARTUP_HOOK, node, "os.symlink", "symlink", ctx)
        # test-detection: the call stack
        if q in _INTROSPECTION_CALLS:
            scope.introspection.append(node.lineno)

    def _own_pid(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            return self.qual(node.func) in ("os.getpid", "os.getppid", "os.getpgid", "os.getpgrp")
        return isinstance(node, ast.Constant) and node.value == 0

    def _import(self, node: ast.Import | ast.ImportFrom, ctx: _Ctx) -> None:
        info = self.info
        if info.test_file or ctx.type_checking:
            return
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif node.level:
            return
        else:
            modules = [node.module or ""]
            if node.module == "doctest" and any(a.name.startswith("_") for a in node.names):
                self.add(PYTEST_INTERNALS, node, "imports doctest internals", None, ctx)
        if info.support:
            return
        for module in modules:
            root = module.split(".", 1)[0]
            if root in _RUNNER_ROOTS and not (root == "unittest" and ctx.main_guard):
                self.add(PYTEST_INTERNALS, node, f"imports {module}", f"import:{root}", ctx)

    def _assign(
        self, node: ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete, ctx: _Ctx
    ) -> None:
        info = self.info
        if info.test_file:
            return
        raw = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        targets = [x for t in raw for x in _unpack(t)]
        verb = "deletes from" if isinstance(node, ast.Delete) else "assigns into"
        for target in targets:
            if isinstance(target, ast.Name):
                if target.id == "pytest_plugins":
                    self.add(PYTEST_INTERNALS, target, "sets pytest_plugins", None, ctx)
            elif isinstance(target, ast.Subscript):
                if self.qual(target.value) == "sys.modules":
                    self.add(SYS_MODULES, target, f"{verb} sys.modules", "sys.modules", ctx)
                elif _is_builtins_dict(target.value, self.aliases):
                    self.add(SYS_MODULES, target, "patches builtins", "builtins", ctx)
            elif isinstance(target, ast.Attribute):
                q = self.qual(target)
                if q is None:
                    continue
                root = _root(q)
                if root in _PATCH_ROOTS:
                    if not info.support:
                        self.add(PYTEST_INTERNALS, target, f"patches {q}", None, ctx)
                elif root == "builtins":
                    self.add(SYS_MODULES, target, f"patches {q}", "builtins", ctx)
                elif q in _PATCHED_ATTRS or root in _PATCHED_MODULES:
                    self.add(SYS_MODULES, target, f"patches {q}", None, ctx)

    def _statement(self, stmt: ast.stmt, ctx: _Ctx) -> None:
        """Rules about one statement's own expressions (not the statements in its body)."""
        own = _own_nodes(stmt)
        strings = [n.value for n in own if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if not strings:
            return
        names = {q for n in own if isinstance(n, (ast.Attribute, ast.Name)) if (q := self.qual(n))}
        if not self.info.test_file:
            if names & {"sys.modules", "sys.modules.get", "sys.modules.keys"}:
                if any(_TEST_MODULE.match(s) for s in strings):
                    detail = "looks for a test runner in sys.modules"
                    self.add(TEST_DETECTION, stmt, detail, None, ctx)
            if names & {"sys.argv", "sys.orig_argv"}:
                if any(self._argv_test_check(n) for n in own):
                    self.add(TEST_DETECTION, stmt, "checks sys.argv for a test run", None, ctx)
        writes = any(
            isinstance(n, ast.Call) and _is_write_call(n, self.qual(n.func), _method(n))
            for n in own
        )
        if writes and any(_SITE_DIR_STRING.search(s) for s in strings):
            self.add(STARTUP_HOOK, stmt, "writes into site-packages", "site", ctx)
        if writes and any(_BYTECODE_STRING.search(s) for s in strings):
            self.add(STARTUP_HOOK, stmt, "writes bytecode", "bytecode", ctx)

    def _argv_test_check(self, node: ast.AST) -> bool:
        """`node` compares the command line with a test runner's name. A bare "test" matched
        exactly against one argument (`sys.argv[1] == "test"`, `"test" in sys.argv`) is the
        project's own subcommand, not that."""
        strings = _compared(node, self.aliases)
        if not any(_TESTISH.search(c) for c in strings):
            return False
        if isinstance(node, ast.Compare) and all(
            isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops
        ):
            exact = all(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops) or all(
                self.qual(c) in ("sys.argv", "sys.orig_argv") for c in node.comparators
            )
            if exact and all(not _TESTISH.search(c) or _BARE_TEST.match(c) for c in strings):
                return False
        return True

    def _scope(self, scope: _Scope) -> None:
        """Rules about a whole function (or the module's own code)."""
        if self.info.test_file and not scope.module:
            return
        # Test helpers shipped with the project say "test" everywhere: not a signal there.
        if scope.introspection and scope.testish and not (self.info.test_file or self.info.support):
            line = min(scope.introspection)
            self.found.append(_Finding(TEST_DETECTION, line, "inspects the call stack for a test"))
        if scope.site_calls and scope.writes:
            line = min(scope.site_calls)
            self.found.append(_Finding(STARTUP_HOOK, line, "writes into site-packages", "site"))
        if scope.pth and (scope.site_calls or scope.site_strings) and scope.writes:
            self.found.append(_Finding(STARTUP_HOOK, min(scope.pth), "writes a .pth file", "site"))
        if scope.bytecode_calls and scope.writes:
            line = min(scope.bytecode_calls)
            self.found.append(_Finding(STARTUP_HOOK, line, "writes bytecode", "bytecode"))


_BARE_TEST = re.compile(r"(?i)^tests?$")
_SITE_DIR_STRING = re.compile(r"(?i)(?:site|dist)-packages")
_BYTECODE_STRING = re.compile(r"(?i)\.py[co]\b|__pycache__")


#: Calls that compare their string arguments with something.
_MATCH_METHODS = {"startswith", "endswith", "find", "rfind", "index", "rindex", "count"}
_MATCH_CALLS = {"re.search", "re.match", "re.fullmatch", "fnmatch.fnmatch", "fnmatch.filter"}


def _compared(node: ast.AST, aliases: Mapping[str, str]) -> list[str]:
    """The strings `node` compares something with: the operands of `in`/`==`/..., the
    arguments of `startswith`/`re.search`/...; a string that is only printed is not one."""
    if isinstance(node, ast.Compare):
        operands: list[ast.expr] = [node.left, *node.comparators]
    elif isinstance(node, ast.Call) and (
        _method(node) in _MATCH_METHODS or _qualname(node.func, aliases) in _MATCH_CALLS
    ):
        operands = list(node.args)
    else:
        return []
    out: list[str] = []
    for op in operands:
        items = op.elts if isinstance(op, (ast.Tuple, ast.List, ast.Set)) else [op]
        for item in items:
            folded = _fold(item)
            if folded is not None:
                out.append(folded)
    return out


def _method(node: ast.Call) -> str | None:
    return node.func.attr if isinstance(node.func, ast.Attribute) else None


def _is_bare_string(node: ast.AST) -> bool:
    """A docstring or another string statement: not code."""
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _walk(root: ast.AST, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
    """Every node below `root` in source order, parents first (docstrings left out), with when
    it runs."""
    out: list[tuple[ast.AST, _Ctx]] = []
    stack = [(child, ctx) for child in reversed(list(ast.iter_child_nodes(root)))]
    while stack:
        node, c = stack.pop()
        if _is_bare_string(node):
            continue
        out.append((node, c))
        children: list[tuple[ast.AST, _Ctx]]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # Decorators, defaults and annotations run where the def is; the body when called.
            inner = _Ctx(node, c.main_guard, c.type_checking)
            children = [
                (sub, inner if name == "body" else c)
                for name, value in ast.iter_fields(node)
                for sub in (value if isinstance(value, list) else [value])
                if isinstance(sub, ast.AST)
            ]
        elif isinstance(node, ast.If) and (
            _is_main_guard(node.test) or _is_type_checking(node.test)
        ):
            if _is_main_guard(node.test):
                guarded = _Ctx(c.func, True, c.type_checking)
            else:
                guarded = _Ctx(c.func, c.main_guard, True)
            children = [(node.test, c), *((s, guarded) for s in node.body)]
            children += [(s, c) for s in node.orelse]
        else:
            children = [(child, c) for child in ast.iter_child_nodes(node)]
        stack.extend(reversed(children))
    return out


def _own_nodes(stmt: ast.stmt) -> list[ast.AST]:
    """The nodes of `stmt` itself: its expressions, not the statements nested in its body (nor
    the bodies of lambdas)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    stack: list[ast.AST] = [
        sub
        for name, value in ast.iter_fields(stmt)
        if name not in ("body", "orelse", "finalbody", "handlers", "cases")
        for sub in (value if isinstance(value, list) else [value])
        if isinstance(sub, ast.AST)
    ]
    out: list[ast.AST] = []
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _is_main_guard(test: ast.expr) -> bool:
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it was imported as (`from sys import exit as bye`: bye -> sys.exit)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    root = a.name.split(".", 1)[0]
                    out[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _qualname(node: ast.AST, aliases: Mapping[str, str]) -> str | None:
    """`os.path.join` for a reference to it, through import aliases; None for a name that was
    not imported (a local variable called `gc` is not the gc module) or not a dotted name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    if node.id in aliases:
        base = aliases[node.id]
    elif node.id in _BUILTIN_NAMES:
        base = node.id
    else:
        return None
    root, _, rest = base.partition(".")
    root = _BUILTINS_ALIASES.get(root, root)
    base = f"{root}.{rest}" if rest else root
    return ".".join([base, *reversed(parts)])


def _root(q: str) -> str:
    return q.split(".", 1)[0]


def _is_builtins_dict(node: ast.AST, aliases: Mapping[str, str]) -> bool:
    """`__builtins__`, `builtins.__dict__` or `vars(builtins)`."""
    q = _qualname(node, aliases)
    if q in ("builtins", "builtins.__dict__"):
        return True
    if isinstance(node, ast.Call) and _qualname(node.func, aliases) == "vars" and node.args:
        return _qualname(node.args[0], aliases) == "builtins"
    return False


def _unpack(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [x for e in target.elts for x in _unpack(e)]
    if isinstance(target, ast.Starred):
        return _unpack(target.value)
    return [target]


def _fold(node: ast.expr) -> str | None:
    """The value of a concatenation of string literals (`"PYTEST_" + "CURRENT_TEST"`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _fold(node.left), _fold(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _strings(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def _is_int(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    )


def _mode(node: ast.Call, position: int) -> str | None:
    for kw in node.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    if len(node.args) > position:
        arg = node.args[position]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


def _writes_mode(mode: str | None) -> bool:
    return mode is not None and any(c in mode for c in "wax+")


def _is_write_call(node: ast.Call, q: str | None, method: str | None) -> bool:
    if q in _OPEN_CALLS:
        return _writes_mode(_mode(node, 1))
    if q == "os.open":
        flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        return bool(flags & {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"})
    if q in _WRITE_CALLS or method in _WRITE_METHODS:
        return True
    if method == "open":
        return _writes_mode(_mode(node, 0))
    if method == "write":
        # `tree.write("out.xml")` (ElementTree) writes a file named by its argument
        return any(s.lower().endswith(".xml") for s in _strings(node))
    return False


# --- the fallback for files that do not parse -------------------------------------------------

_WRITE_RX = r"(?:open\([^)]*['\"][wax+]|write_text|write_bytes|shutil\.copy|\.touch\(|makedirs)"
_TESTISH_RX = r"(?i:py\.?test|unittest|(?<![a-z])tests?(?![a-z]))"
_STACK_RX = r"(?:inspect\.stack|sys\._getframe|inspect\.currentframe|f_back|co_filename)"
_SITE_RX = r"(?:site-packages|dist-packages|getsitepackages)"
_PYC_RX = r"(?:\.py[co]\b|__pycache__)"


def _near(a: str, b: str) -> str:
    """`a` and `b` on one line, in either order."""
    return f"{a}.*{b}|{b}.*{a}"


def _all(*parts: str) -> str:
    """Every one of `parts` somewhere on the line."""
    return "^" + "".join(f"(?=.*(?:{p}))" for p in parts)


_CMP_RX = r"\bin\b|==|!=|\.(?:startswith|endswith|find|index|count)\(|re\.(?:search|match)\("


def _quoted(word: str) -> str:
    return "['\"][^'\"]*" + word


_T, _PI, _S, _X, _R, _E = (
    TEST_DETECTION,
    PYTEST_INTERNALS,
    SYS_MODULES,
    REPORT_FILE,
    STARTUP_HOOK,
    EXIT_AT_IMPORT,
)

# (rule, pattern, detail, established-use kind, flags: s = not in test files, p = not in
# test-support modules either, t = at column 0 only)
_LINE_TABLE: tuple[tuple[str, str, str, str | None, str], ...] = (
    (_T, r"PYTEST_(?!ADDOPTS)[A-Z0-9_]*", "PYTEST_*", None, "s"),
    (_T, r"UNITTEST", "UNITTEST", None, "s"),
    (_T, r"['\"]_pytest", "'_pytest'", None, "s"),
    (_T, r"_called_from_test", "_called_from_test", None, "s"),
    (
        _T,
        _near(r"sys\.modules", r"['\"](?:_?pytest|py\.test|unittest|nose)\b"),
        "looks for a test runner in sys.modules",
        None,
        "s",
    ),
    (
        _T,
        _all(r"sys\.argv", _quoted(_TESTISH_RX), _CMP_RX),
        "checks sys.argv for a test run",
        None,
        "s",
    ),
    (
        _T,
        _all(_STACK_RX, _quoted(_TESTISH_RX), _CMP_RX),
        "inspects the call stack for a test",
        None,
        "s",
    ),
    (
        _PI,
        r"^\s*(?:import|from)\s+(?:_?pytest|pluggy|unittest)\b",
        "imports the test runner",
        "import",
        "sp",
    ),
    (_S, r"sys\.modules\s*\[[^\]]*\]\s*=(?!=)", "assigns into sys.modules", "sys.modules", "s"),
    (_S, r"\bdel\s+sys\.modules\b", "deletes from sys.modules", "sys.modules", "s"),
    (
        _S,
        r"sys\.modules\.(?:pop|popitem|update|setdefault|clear|__setitem__|__delitem__)\(",
        "changes sys.modules",
        "sys.modules",
        "s",
    ),
    (
        _S,
        r"\b(?:builtins|__builtins__|__builtin__)\.\w+\s*=(?!=)|__builtins__\s*\[[^\]]*\]\s*=(?!=)",
        "patches builtins",
        "builtins",
        "s",
    ),
    (_S, r"\b(?:sys|threading)\.set(?:trace|profile)\(", "sys.settrace", "trace", "s"),
    (_S, r"\bgc\.get_(?:objects|referrers|referents)\(", "gc.get_objects", "gc", "s"),
    (_X, r"PYTEST_ADDOPTS", "PYTEST_ADDOPTS", None, ""),
    (_X, r"(?i)junit", "junit", "junit", ""),
    (_X, r"/proc/self/fd|/dev/fd/", "/proc/self/fd", "procfd", ""),
    (_X, r"\bos\.dup2\(", "os.dup2", "dup2", ""),
    (
        _X,
        r"\b(?:os\.write|os\.fdopen|open)\(\s*\d+\s*[,)]",
        "writes to a file-descriptor number",
        "fd",
        "",
    ),
    (_X, r"\batexit\.register\b", "atexit.register", "atexit", ""),
    (_X, _near(r"\.xml['\"]", _WRITE_RX), "writes an .xml file", "xml", ""),
    (_R, r"(?i)sitecustomize|usercustomize", "sitecustomize", "sitecustomize", ""),
    (_R, r"\bsite\.(?:addsitedir|addpackage|main)\(", "site.addsitedir", "site", ""),
    (_R, _near(_SITE_RX, _WRITE_RX), "writes into site-packages", "site", ""),
    (_R, _near(_PYC_RX, _WRITE_RX), "writes bytecode", "bytecode", ""),
    (_R, r"\b(?:py_compile|compileall)\.\w+\(", "writes bytecode", "bytecode", ""),
    (_R, r"\bos\.symlink\(|\.symlink_to\(", "os.symlink", "symlink", ""),
    (_E, r"\bos\._exit\(", "os._exit", "os._exit", ""),
    (_E, r"\bos\.fork(?:pty)?\(", "os.fork", "fork", ""),
    (_E, r"\bos\.abort\(", "os.abort", "abort", ""),
    (
        _E,
        r"\bos\.kill(?:pg)?\(\s*(?:os\.getp?pid\(\)|os\.getpgrp\(\)|0\s*,)",
        "kills its own process",
        "selfkill",
        "",
    ),
    (_E, r"\bsignal\.(?:raise_signal|pthread_kill)\(", "signals its own process", "selfkill", ""),
    (_E, r"^(?:sys\.exit|exit|quit)\(|^raise\s+SystemExit\b", "exits at import time", "exit", "t"),
    (
        _E,
        r"^signal\.(?:signal|alarm|setitimer|siginterrupt|set_wakeup_fd|pause)\(",
        "signal at import time",
        "signal",
        "t",
    ),
)


@dataclass(frozen=True)
class _LineRule:
    rule: str
    pattern: re.Pattern[str]
    detail: str
    kind: str | None
    #: Not for test files / not for test-support modules either / at column 0 only.
    source_only: bool
    project_only: bool
    top_level: bool


_LINE_RULES = tuple(
    _LineRule(rule, re.compile(rx), detail, kind, "s" in flags, "p" in flags, "t" in flags)
    for rule, rx, detail, kind, flags in _LINE_TABLE
)


class _RegexScanner:
    """Line by line, for a file that does not parse: rougher, and only for what it adds."""

    def __init__(self, info: _FileInfo) -> None:
        self.info = info

    def scan(self, text: str) -> list[_Finding]:
        return list(self._scan(text))

    def _scan(self, text: str) -> Iterator[_Finding]:
        info = self.info
        in_main = False
        for number, raw in enumerate(text.splitlines(), start=1):
            line = _strip_comment(raw)
            if not line.strip():
                continue
            if not raw[:1].isspace():
                in_main = bool(re.match(r"if\s+__name__\s*==\s*['\"]__main__['\"]", line))
            if info.test_file and raw[:1].isspace() and "PYTEST_ADDOPTS" not in line:
                continue  # a test file: only what runs at import time, as with the ast
            for r in _LINE_RULES:
                if r.source_only and info.test_file:
                    continue
                if r.project_only and info.support:
                    continue
                if r.top_level and (raw[:1].isspace() or in_main or info.script):
                    continue
                m = r.pattern.search(line)
                if m:
                    detail = m.group(0) if r.detail.endswith("*") else r.detail
                    yield _Finding(r.rule, number, detail, r.kind)


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line
