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
- ``obfuscated-access`` (project code): a watched module (sys, os, builtins, importlib, gc,
  atexit, inspect, site, doctest, pytest, _pytest, pluggy, unittest) reached by a name the diff
  does not spell out: ``getattr``/``setattr``/``hasattr``/``delattr``, ``__getattribute__``
  or a namespace subscript (``vars(builtins)[...]``, ``sys.modules[...]``) with a name built
  from pieces (``"mod" + "ules"``), or, for the getattr family, computed at run time (a
  variable looked up in builtins, as an evaluator does, is not); ``__import__``/``import_module``
  of a watched module by a built name; and, in any file, ``exec``/``eval``/``compile`` of
  decoded code (base64, hex, zlib/bz2/lzma/gzip, ``codecs``, ``marshal``, ``chr`` sequences,
  reversed slices), however it is reached (``getattr(builtins, "ex" + "ec")``).
- ``always-equal`` (project code, not test-support modules): a comparison that does not
  compare: ``__eq__``/``__ne__``/``__contains__``/``__instancecheck__``/``__subclasscheck__``/
  ``__subclasshook__`` (a ``def``, a ``lambda`` in the class body, one assigned onto a class
  or given to ``type()``) that never reads what it is compared with, returns one constant
  (``... or True`` too), or returns True for any str/int/... (``isinstance(other, str)`` its
  only guard); ``__lt__``/``__gt__`` (``__le__``/``__ge__``) both True for anything, or any
  constant ordering in a subclass of a builtin type; a str/int/list... subclass whose
  ``__eq__``/``__ne__`` never reads its own value. ``NotImplemented``, comparing fields,
  ``isinstance(other, OwnClass)``, an Infinity (greater than anything, not also smaller) and
  constant ``__bool__``/``__len__``/``__hash__`` are ordinary.

Python files are read with `ast`; a file that does not parse is read line by line with regular
expressions instead. Other files only meet the path rule. Precision matters as much as recall (a
false hit refuses a real fix), so:

- only what the change adds is reported: findings of the base and the new text are compared as
  a multiset keyed by rule and (whitespace-normalised) line, so moved, re-indented or requoted
  code is not new, while code moved into import time is; an added file that is mostly a deleted
  one (a move) is compared with it;
- docstrings and comments are never read, names are resolved through the file's imports (a
  local variable called `gc` is not the gc module) and through a name's only assignment in its
  scope (``_sys = __import__("sys")``, ``loaded = getattr(_sys, "modules")``; a name bound
  twice, a parameter, ``global`` are not followed), and a string counts as "test-ish" only
  where it is compared (``in``, ``==``, ``startswith``, ``re.search``...), not where it is printed;
- a string built from literals only is read as the literal it is: ``+``, ``%``, ``.format``,
  f-strings, ``sep.join(...)``, ``chr``/``map(chr, ...)``, slices, ``str`` methods,
  ``bytes.fromhex``, base64/binascii, ``codecs.decode(..., "rot13")``, decompression (bounded),
  ``.decode()``; the code an exec/eval/compile of such a string runs is screened as if it were
  written at the call, and reported on its line;
- established use: a file whose base text already does the same kind of thing (a lazy-import
  module that assigns into ``sys.modules``, a process module that forks, a script that exits at
  import time, a matcher module with an object equal to anything) may do it again. Test
  detection, ``PYTEST_ADDOPTS``, patching pytest or the process functions and running decoded
  code never are;
- test files (``test_*.py``, ``*_test.py``, ``tests/``, the loop's ``allowed`` files, pytest
  plugin modules) are protected and validated elsewhere: they are screened only for what they
  do at import time (and ``PYTEST_ADDOPTS``), never for using pytest or mocking modules.

Known limits: it reads code, it does not run it, one file at a time. Values are followed
through one file's single assignments only: not across modules, function calls or arguments,
attributes (``self.name``), containers filled at run time or names bound more than once; so a
name passed in from elsewhere (``_call("exec", code)``), ``operator.attrgetter``,
``eval("__import__")``, a string decoded from a file or the network, or ``exec`` of code built
from run-time pieces without a decoder (namedtuple-style templates are legitimate) are not seen
through. A variable name looked up in builtins is allowed. always-equal reads the method's own
body: a comparison that delegates to a helper which always says yes, that is True only for
some values (``other in ("", "<no word>")`` in a class that is not a builtin subclass), or a
lone constant ``__le__``/``__ge__`` (an Infinity's shape) is not caught.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs
import difflib
import lzma
import re
import warnings
import zlib
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
OBFUSCATED_ACCESS = "obfuscated-access"
ALWAYS_EQUAL = "always-equal"
PROTECTED_PATH = "protected-path"

RULES: tuple[str, ...] = (
    PROTECTED_PATH,
    TEST_DETECTION,
    PYTEST_INTERNALS,
    SYS_MODULES,
    REPORT_FILE,
    STARTUP_HOOK,
    EXIT_AT_IMPORT,
    OBFUSCATED_ACCESS,
    ALWAYS_EQUAL,
)

_PHRASES = {
    PROTECTED_PATH: "touches a protected path",
    TEST_DETECTION: "detects a test run",
    PYTEST_INTERNALS: "imports or patches test-runner internals",
    SYS_MODULES: "patches the interpreter",
    REPORT_FILE: "touches test reports or the runner's output",
    STARTUP_HOOK: "installs an interpreter startup hook",
    EXIT_AT_IMPORT: "exits or kills the process",
    OBFUSCATED_ACCESS: "hides what it reaches or runs",
    ALWAYS_EQUAL: "makes a comparison always pass",
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


# --- indirection: what a name is bound to, what a built string is -----------------------------

#: A value built from literals: `"".join(["py", "te", "st"])`, `bytes.fromhex("7079")`, `[1, 2]`.
_Value = str | bytes | int | tuple["_Value", ...]


@dataclass(frozen=True)
class _Loop:
    """A loop variable (of a `for` or a comprehension): it takes each item of `items`."""

    items: ast.expr


#: What one name is bound to in its scope: the expression of its only assignment, the loop it
#: is the variable of, or None (a parameter, an import, two assignments...).
_Binding = ast.expr | _Loop | None

_MAX_LEN = 1 << 20
_MAX_ITEMS = 1 << 16
#: Format strings with a width of 1000 or more, or attribute/item access in a field, are not run.
_UNSAFE_FORMAT = re.compile(r"\d{4,}|\{[^}]*[.\[]")
_TEXT_ENCODINGS = {"utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1", "utf-16"}
#: `codecs.decode(x, codec)` codecs that are folded (bounded ones only).
_CODECS = {"rot13", "rot_13", "hex", "hex_codec", "base64", "base_64", "base64_codec"}
_CODECS |= _TEXT_ENCODINGS
_BASE64_CALLS: dict[str, Callable[[bytes], bytes]] = {
    "base64.b64decode": base64.b64decode,
    "base64.standard_b64decode": base64.standard_b64decode,
    "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.b32decode": base64.b32decode,
    "base64.b16decode": base64.b16decode,
    "base64.b85decode": base64.b85decode,
    "base64.a85decode": base64.a85decode,
    "base64.decodebytes": base64.decodebytes,
    "binascii.a2b_base64": binascii.a2b_base64,
    "binascii.unhexlify": binascii.unhexlify,
    "binascii.a2b_hex": binascii.a2b_hex,
}
_DECOMPRESS_CALLS = {"zlib.decompress", "bz2.decompress", "lzma.decompress", "gzip.decompress"}
#: What turns data into code nobody can read in the diff: given to exec/eval/compile, hidden code.
_DECODER_CALLS = {
    *_BASE64_CALLS,
    *_DECOMPRESS_CALLS,
    "bytes.fromhex",
    "bytearray.fromhex",
    "codecs.decode",
    "codecs.encode",
    "marshal.loads",
    "pickle.loads",
    "chr",
}
_DECODER_METHODS = {"decompress", "fromhex", "translate", "b64decode", "unhexlify"}
_STR_METHODS = {
    "lower",
    "upper",
    "strip",
    "lstrip",
    "rstrip",
    "title",
    "swapcase",
    "casefold",
    "capitalize",
    "removeprefix",
    "removesuffix",
    "replace",
}


class _Bindings:
    """For every name read in a module, the only thing it can be bound to (`_Binding`), found
    scope by scope (functions see their enclosing functions and the module, not class bodies). A
    name bound twice, by `global`/`nonlocal`, or by anything but a plain assignment is opaque."""

    def __init__(self, tree: ast.Module) -> None:
        #: id of a `Name` that is read -> its binding; absent: bound nowhere in the file.
        self.of: dict[int, _Binding] = {}
        #: Local name -> what it was imported as, anywhere in the file (`_aliases`).
        self.aliases: dict[str, str] = {}
        module = _NameScope(None)
        loads: list[tuple[ast.Name, _NameScope]] = []
        poisoned: set[str] = set()
        stack: list[tuple[ast.AST, _NameScope]] = [(tree, module)]
        while stack:
            node, scope = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                assert isinstance(node, ast.Name)
                if isinstance(node.ctx, ast.Load):
                    loads.append((node, scope))
                else:
                    scope.bind(node.id, None)
                continue
            if kind in _LEAVES:
                continue
            children: list[ast.AST] = []
            inner: _NameScope | None = None
            if kind not in _BINDERS:
                children += ast.iter_child_nodes(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not isinstance(node, ast.Lambda):
                    scope.bind(node.name, None)
                    children += node.decorator_list
                    children += [node.returns] if node.returns else []
                args = node.args
                every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
                every += [a for a in (args.vararg, args.kwarg) if a is not None]
                children += [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
                children += [a.annotation for a in every if a.annotation is not None]
                inner = _NameScope(scope.enclosing())
                for a in every:
                    inner.bind(a.arg, None)
                body = node.body if isinstance(node.body, list) else [node.body]
                stack.extend((b, inner) for b in body)
            elif isinstance(node, ast.ClassDef):
                scope.bind(node.name, None)
                children += [*node.bases, *node.keywords, *node.decorator_list]
                inner = _NameScope(scope, is_class=True)
                stack.extend((b, inner) for b in node.body)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                poisoned.update(node.names)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        scope.bind(target.id, node.value)
                    else:
                        children.append(target)
                children.append(node.value)
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and isinstance(
                node.target, ast.Name
            ):
                if node.value is not None:
                    scope.bind(node.target.id, node.value)
                children += [c for c in ast.iter_child_nodes(node) if c is not node.target]
            elif isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name):
                scope.bind(node.target.id, _Loop(node.iter))
                children += [node.iter, *node.body, *node.orelse]
            elif isinstance(node, ast.comprehension) and isinstance(node.target, ast.Name):
                scope.bind(node.target.id, _Loop(node.iter))  # its own scope, really
                children += [node.iter, *node.ifs]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                _add_aliases(node, self.aliases)
                for imported in node.names:
                    scope.bind((imported.asname or imported.name).split(".", 1)[0], None)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                scope.bind(node.name, None)
                children += list(ast.iter_child_nodes(node))
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                scope.bind(node.name, None)
                children += list(ast.iter_child_nodes(node))
            elif isinstance(node, ast.MatchMapping) and node.rest:
                scope.bind(node.rest, None)
                children += list(ast.iter_child_nodes(node))
            else:
                children += list(ast.iter_child_nodes(node))
            stack.extend((c, scope) for c in children)
        for name, scope in loads:
            s: _NameScope | None = scope
            while s is not None:
                found = s.names.get(name.id)
                if found is not None:
                    one = len(found) == 1 and name.id not in poisoned
                    self.of[id(name)] = found[0] if one else None
                    break
                s = s.parent


#: Nodes with nothing below them that binds or reads a name.
_LEAVES: frozenset[type] = frozenset(
    (
        *(ast.Constant, ast.Load, ast.Store, ast.Del, ast.Pass, ast.Break, ast.Continue),
        *ast.operator.__subclasses__(),
        *ast.cmpop.__subclasses__(),
    )
)
#: Nodes that bind a name (the others are only walked through).
_BINDERS: frozenset[type] = frozenset(
    (
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.Lambda,
        ast.ClassDef,
        ast.Global,
        ast.Nonlocal,
        ast.Assign,
        ast.AnnAssign,
        ast.NamedExpr,
        ast.For,
        ast.AsyncFor,
        ast.comprehension,
        ast.Import,
        ast.ImportFrom,
        ast.ExceptHandler,
        ast.MatchAs,
        ast.MatchStar,
        ast.MatchMapping,
    )
)


@dataclass
class _NameScope:
    parent: _NameScope | None
    is_class: bool = False
    names: dict[str, list[_Binding]] = field(default_factory=dict)

    def bind(self, name: str, value: _Binding) -> None:
        self.names.setdefault(name, []).append(value)

    def enclosing(self) -> _NameScope | None:
        """The scope a function defined here sees: not a class body's own."""
        s: _NameScope | None = self
        while s is not None and s.is_class:
            s = s.parent
        return s


def _is_plain_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Resolver:
    """Names and values through the file's imports, its single assignments and literal-only
    string building: `getattr(__import__("sys"), "mod" + "ules")` is `sys.modules`,
    `"".join(["py", "te", "st"])` is "pytest"."""

    def __init__(self, tree: ast.Module, outer: Mapping[str, str] | None = None) -> None:
        self.bindings = _Bindings(tree)
        #: `outer`: the imports of the file whose exec runs this code (it shares its globals).
        self.aliases = {**(outer or {}), **self.bindings.aliases}
        self._values: dict[int, _Value | None] = {}
        self._quals: dict[int, str | None] = {}

    def binding(self, node: ast.Name) -> _Binding:
        return self.bindings.of.get(id(node))

    def is_bound(self, node: ast.Name) -> bool:
        return id(node) in self.bindings.of

    def loop_values(self, node: ast.AST) -> tuple[str, ...] | None:
        """The strings a loop variable takes (`for name in ("stdout", "stderr")`), or None."""
        bound = self.binding(node) if isinstance(node, ast.Name) else None
        if not isinstance(bound, _Loop):
            return None
        items = _items(self.value(bound.items))
        if not items or not all(isinstance(i, str) for i in items):
            return None
        return tuple(i for i in items if isinstance(i, str))

    # names

    def qual(self, node: ast.AST) -> str | None:
        """`os.path.join` for a reference to it, through import aliases and single assignments;
        None for a name that is not a module's (a local variable called `gc` is not the gc
        module) or not a dotted name."""
        key = id(node)
        if key in self._quals:
            return self._quals[key]
        self._quals[key] = None  # a name bound to itself
        try:
            q = self._qual(node)
        except RecursionError:
            q = None
        self._quals[key] = q
        return q

    def _qual(self, node: ast.AST) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        base = self._base(node)
        if base is None:
            return None
        root, _, rest = base.partition(".")
        root = _BUILTINS_ALIASES.get(root, root)
        base = f"{root}.{rest}" if rest else root
        return ".".join([base, *reversed(parts)])

    def _base(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if not self.is_bound(node):
                return node.id if node.id in _BUILTIN_NAMES else None
            bound = self.binding(node)
            return self.qual(bound) if isinstance(bound, ast.expr) else None
        if isinstance(node, ast.Call):
            return self._call_base(node)
        if isinstance(node, ast.Subscript):
            key = self.fold(node.slice)
            if key is None:
                return None
            container = node.value
            if self.qual(container) == "sys.modules":
                return key
            owner = self.namespace_of(container)
            return f"{owner}.{key}" if owner is not None and key.isidentifier() else None
        return None

    def _call_base(self, node: ast.Call) -> str | None:
        func = _builtin_call(self.qual(node.func))
        args = node.args
        if func in ("__import__", "importlib.import_module") and args:
            name = self.fold(args[0])
            if name is None or not _MODULE_NAME.match(name):
                return None
            fromlist = len(args) >= 4 or any(k.arg == "fromlist" for k in node.keywords)
            return name.split(".", 1)[0] if func == "__import__" and not fromlist else name
        if func == "getattr" and len(args) in (2, 3):
            owner, attr = self.qual(args[0]), self.fold(args[1])
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "__getattribute__":
            owner = self.qual(node.func.value)
            attr = self.fold(args[0]) if len(args) == 1 else None
        else:
            return None
        if owner is None or attr is None or not attr.isidentifier():
            return None
        return f"{owner}.{attr}"

    def namespace_of(self, node: ast.AST) -> str | None:
        """The module whose namespace `node` is: `builtins` for `__builtins__`, `sys` for
        `vars(sys)` or `sys.__dict__`."""
        if _is_builtins_dict(node, self):
            return "builtins"
        q = self.qual(node)
        if q is not None and q.endswith(".__dict__"):
            return q[: -len(".__dict__")]
        if isinstance(node, ast.Call) and self.qual(node.func) == "vars" and len(node.args) == 1:
            return self.qual(node.args[0])
        return None

    # values

    def fold(self, node: ast.AST) -> str | None:
        """The string `node` evaluates to if it is built from literals only, else None."""
        v = self.value(node)
        return v if isinstance(v, str) else None

    def value(self, node: ast.AST) -> _Value | None:
        key = id(node)
        if key in self._values:
            return self._values[key]
        self._values[key] = None  # a name bound to itself
        try:
            v = self._value(node, {})
        except (RecursionError, MemoryError):
            v = None
        self._values[key] = v
        return v

    def _value(self, node: ast.AST, env: Mapping[str, _Value]) -> _Value | None:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, (str, bytes)) or (isinstance(v, int) and not isinstance(v, bool)):
                return v
            return None
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            bound = self.binding(node)
            return self.value(bound) if isinstance(bound, ast.expr) else None

        def ev(n: ast.AST) -> _Value | None:
            return self._value(n, env) if env else self.value(n)

        if isinstance(node, (ast.Tuple, ast.List)):
            if len(node.elts) > _MAX_ITEMS:
                return None
            items = [i for i in map(ev, node.elts) if i is not None]
            return tuple(items) if len(items) == len(node.elts) else None
        if isinstance(node, ast.BinOp):
            left = ev(node.left)
            if left is None:
                return None
            right = ev(node.right)
            return _binop(node.op, left, right) if right is not None else None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = ev(node.operand)
            return -operand if isinstance(operand, int) else None
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node, ev)
        if isinstance(node, ast.Subscript):
            return _subscript(ev(node.value), node.slice, ev)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self._comprehension(node, env)
        if isinstance(node, ast.Call):
            return self._call_value(node, ev)
        return None

    def _fstring(self, node: ast.JoinedStr, ev: Callable[[ast.AST], _Value | None]) -> str | None:
        out: list[str] = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                out.append(part.value)
                continue
            if not isinstance(part, ast.FormattedValue):
                return None
            v = ev(part.value)
            if not isinstance(v, (str, int)):
                return None
            spec = ""
            if part.format_spec is not None:
                folded = ev(part.format_spec)
                if not isinstance(folded, str) or _UNSAFE_FORMAT.search(folded):
                    return None
                spec = folded
            if part.conversion == ord("r"):
                v = repr(v)
            elif part.conversion == ord("a"):
                v = ascii(v)
            try:
                out.append(format(v, spec))
            except (ValueError, TypeError):
                return None
        text = "".join(out)
        return text if len(text) <= _MAX_LEN else None

    def _comprehension(
        self, node: ast.ListComp | ast.GeneratorExp, env: Mapping[str, _Value]
    ) -> _Value | None:
        if len(node.generators) != 1:
            return None
        gen = node.generators[0]
        if gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name):
            return None
        items = _items(self._value(gen.iter, env))
        if items is None:
            return None
        out: list[_Value] = []
        for item in items:
            v = self._value(node.elt, {**env, gen.target.id: item})
            if v is None:
                return None
            out.append(v)
        return tuple(out)

    def _call_value(self, node: ast.Call, ev: Callable[[ast.AST], _Value | None]) -> _Value | None:
        if any(isinstance(a, ast.Starred) for a in node.args):
            return None
        func = node.func
        q = _builtin_call(self.qual(func))
        if q is None and isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in ("bytes", "bytearray"):
                if not self.is_bound(func.value) and func.value.id not in self.aliases:
                    q = f"bytes.{func.attr}"
        if q is not None:
            return self._function_value(q, node, ev)
        if isinstance(func, ast.Attribute) and (not node.keywords or func.attr == "format"):
            receiver = ev(func.value)
            if isinstance(receiver, (str, bytes)):
                return self._method_value(receiver, func.attr, node, ev)
        return None

    def _function_value(
        self, q: str, node: ast.Call, ev: Callable[[ast.AST], _Value | None]
    ) -> _Value | None:
        if node.keywords:
            return None
        if q == "map" and len(node.args) == 2 and self.qual(node.args[0]) == "chr":
            items = _items(ev(node.args[1]))
            if items is None or not _all_ints(items):
                return None
            return tuple(chr(i) for i in items if isinstance(i, int))
        args = [ev(a) for a in node.args]
        if any(a is None for a in args):
            return None
        first = args[0] if args else None
        try:
            if q == "chr" and len(args) == 1 and isinstance(first, int):
                return chr(first)
            if q == "ord" and len(args) == 1 and isinstance(first, str) and len(first) == 1:
                return ord(first)
            if q == "str" and len(args) == 1 and isinstance(first, (str, int)):
                return str(first)
            if q in ("bytes", "bytearray") and len(args) == 1 and isinstance(first, tuple):
                return bytes(i for i in first if isinstance(i, int)) if _all_ints(first) else None
            if q in ("bytes", "bytearray") and len(args) == 2 and isinstance(first, str):
                enc = args[1]
                return first.encode(enc) if enc in _TEXT_ENCODINGS else None
            if q in ("list", "tuple", "reversed") and len(args) == 1:
                items = _items(first)
                if items is None:
                    return None
                return tuple(reversed(items)) if q == "reversed" else items
            if q in ("bytes.fromhex", "bytearray.fromhex") and isinstance(first, str):
                return bytes.fromhex(first)
            if q in _BASE64_CALLS and len(args) == 1 and isinstance(first, (str, bytes)):
                data = first.encode("ascii") if isinstance(first, str) else first
                return _capped(_BASE64_CALLS[q](data))
            if q in _DECOMPRESS_CALLS and len(args) == 1 and isinstance(first, bytes):
                return _decompress(q, first)
            if q in ("codecs.decode", "codecs.encode") and len(args) == 2:
                codec = args[1]
                if isinstance(codec, str) and codec.lower() in _CODECS:
                    if isinstance(first, str) and codec.lower() in ("rot13", "rot_13"):
                        return codecs.decode(first, "rot13")
                    if isinstance(first, bytes) and q == "codecs.decode":
                        out = codecs.decode(first, codec)
                        return _capped(out) if isinstance(out, (str, bytes)) else None
        except (ValueError, TypeError, OverflowError, LookupError, UnicodeError):
            return None
        return None

    def _method_value(
        self,
        receiver: str | bytes,
        method: str,
        node: ast.Call,
        ev: Callable[[ast.AST], _Value | None],
    ) -> _Value | None:
        args = [ev(a) for a in node.args]
        if any(a is None for a in args):
            return None
        try:
            if method == "join" and len(args) == 1:
                items = _items(args[0])
                if items is None:
                    return None
                if isinstance(receiver, str) and all(isinstance(i, str) for i in items):
                    return _capped(receiver.join(i for i in items if isinstance(i, str)))
                if isinstance(receiver, bytes) and all(isinstance(i, bytes) for i in items):
                    return _capped(receiver.join(i for i in items if isinstance(i, bytes)))
                return None
            if method == "format" and isinstance(receiver, str):
                if _UNSAFE_FORMAT.search(receiver):
                    return None
                kwargs = {k.arg: ev(k.value) for k in node.keywords if k.arg is not None}
                if len(kwargs) != len(node.keywords) or any(v is None for v in kwargs.values()):
                    return None
                return _capped(receiver.format(*args, **kwargs))
            if method == "decode" and isinstance(receiver, bytes):
                enc = args[0] if args else "utf-8"
                return receiver.decode(enc) if enc in _TEXT_ENCODINGS else None
            if method == "encode" and isinstance(receiver, str):
                enc = args[0] if args else "utf-8"
                return receiver.encode(enc) if enc in _TEXT_ENCODINGS else None
            if method == "split" and isinstance(receiver, str) and len(args) <= 1:
                sep = args[0] if args else None
                if sep is not None and not isinstance(sep, str):
                    return None
                parts = receiver.split(sep)
                return tuple(parts) if len(parts) <= _MAX_ITEMS else None
            if method in _STR_METHODS and isinstance(receiver, str):
                if not all(isinstance(a, (str, int)) for a in args):
                    return None
                result = getattr(receiver, method)(*args)
                return _capped(result) if isinstance(result, str) else None
        except (ValueError, TypeError, OverflowError, LookupError, UnicodeError, KeyError):
            return None
        return None

    # what code an expression hides

    def _is_sequence(self, node: ast.AST) -> bool:
        """A list of numbers, spelled out or generated."""
        if isinstance(node, ast.Call):
            return self.qual(node.func) in ("map", "reversed", "range")
        return isinstance(node, (ast.List, ast.Tuple, ast.ListComp, ast.GeneratorExp))

    def decoder(self, node: ast.AST) -> str | None:
        """The decoding, decompressing or character-by-character building `node` (through the
        names it reads) does, e.g. `base64.b64decode`; None if none."""
        seen: set[int] = set()
        stack: list[ast.AST] = [node]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if isinstance(n, ast.Call):
                q = _builtin_call(self.qual(n.func))
                if q in _DECODER_CALLS:
                    return q
                if q in ("bytes", "bytearray") and n.args and self._is_sequence(n.args[0]):
                    return f"{q}() of a sequence"
                if isinstance(n.func, ast.Attribute) and n.func.attr in _DECODER_METHODS:
                    return f".{n.func.attr}()"
            elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Slice):
                step = n.slice.step
                if step is not None and isinstance(self.value(step), int):
                    if self.value(step) != 1:
                        return "a sliced-up string"
            elif isinstance(n, ast.Name):
                bound = self.binding(n)
                if isinstance(bound, ast.expr):
                    stack.append(bound)
            stack.extend(ast.iter_child_nodes(n))
        return None


_MODULE_NAME = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*$")


def _builtin_call(q: str | None) -> str | None:
    """`builtins.exec` and `exec` are one function."""
    if q is not None and q.startswith("builtins.") and q.count(".") == 1:
        return q[len("builtins.") :]
    return q


def _capped(v: _Value) -> _Value | None:
    return None if isinstance(v, (str, bytes)) and len(v) > _MAX_LEN else v


def _items(v: _Value | None) -> tuple[_Value, ...] | None:
    if isinstance(v, tuple):
        return v
    if isinstance(v, str):
        return tuple(v)
    if isinstance(v, bytes):
        return tuple(v)
    return None


def _all_ints(items: tuple[_Value, ...]) -> bool:
    return all(isinstance(i, int) and 0 <= i < 0x110000 for i in items)


def _binop(op: ast.operator, left: _Value, right: _Value) -> _Value | None:
    try:
        if isinstance(op, ast.Add):
            if isinstance(left, str) and isinstance(right, str):
                return _capped(left + right)
            if isinstance(left, bytes) and isinstance(right, bytes):
                return _capped(left + right)
            if isinstance(left, tuple) and isinstance(right, tuple):
                return left + right if len(left) + len(right) <= _MAX_ITEMS else None
        if isinstance(op, ast.Mod) and isinstance(left, str):
            if _UNSAFE_FORMAT.search(left) or not isinstance(right, (str, int, tuple)):
                return None
            return _capped(left % right)
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and max(abs(left), abs(right)) < 1 << 32
        ):
            if isinstance(op, ast.Add):
                return left + right
            if isinstance(op, ast.Sub):
                return left - right
            if isinstance(op, ast.Mult):
                return left * right
            if isinstance(op, ast.BitXor):
                return left ^ right
            if isinstance(op, ast.BitOr):
                return left | right
            if isinstance(op, ast.BitAnd):
                return left & right
            if isinstance(op, ast.FloorDiv) and right:
                return left // right
            if isinstance(op, ast.Mod) and right:
                return left % right
    except (TypeError, ValueError, KeyError, OverflowError):
        return None
    return None


def _subscript(
    container: _Value | None, index: ast.expr, ev: Callable[[ast.AST], _Value | None]
) -> _Value | None:
    if not isinstance(container, (str, bytes, tuple)):
        return None
    try:
        if isinstance(index, ast.Slice):
            bounds: list[int | None] = []
            for part in (index.lower, index.upper, index.step):
                v = ev(part) if part is not None else None
                if part is not None and not isinstance(v, int):
                    return None
                bounds.append(v if isinstance(v, int) else None)
            return container[slice(*bounds)]
        i = ev(index)
        return container[i] if isinstance(i, int) else None
    except (IndexError, ValueError):
        return None


def _decompress(q: str, data: bytes) -> bytes | None:
    """Decompressed `data`, at most `_MAX_LEN` bytes of it (a literal may be a bomb)."""
    try:
        if q == "zlib.decompress":
            return zlib.decompressobj().decompress(data, _MAX_LEN)
        if q == "gzip.decompress":
            return zlib.decompressobj(wbits=31).decompress(data, _MAX_LEN)
        if q == "bz2.decompress":
            return bz2.BZ2Decompressor().decompress(data, _MAX_LEN)
        if q == "lzma.decompress":
            return lzma.LZMADecompressor().decompress(data, _MAX_LEN)
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError):
        return None
    return None


# --- the ast scanner --------------------------------------------------------------------------

#: Names that mean the builtin even when nothing imports them.
_BUILTIN_NAMES = {
    "exit",
    "quit",
    "open",
    "getattr",
    "setattr",
    "hasattr",
    "delattr",
    "vars",
    "__import__",
    "exec",
    "eval",
    "compile",
    "SystemExit",
    "__builtins__",
    "chr",
    "ord",
    "str",
    "bytes",
    "bytearray",
    "list",
    "tuple",
    "map",
    "reversed",
    "range",
    "isinstance",
    "issubclass",
    "type",
    "object",
    "super",
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
    def __init__(
        self,
        info: _FileInfo,
        tree: ast.Module,
        outer: Mapping[str, str] | None = None,
        depth: int = 0,
    ) -> None:
        self.info = info
        self.tree = tree
        self.res = _Resolver(tree, outer)
        self.aliases = self.res.aliases
        self.depth = depth
        self.found: list[_Finding] = []
        self.scopes: dict[int, _Scope] = {}
        #: String constants already read as a module name (`import_module("pytest")`).
        self.consumed: set[int] = set()

    def scan(self, ctx: _Ctx | None = None) -> list[_Finding]:
        for node, c in _walk(self.tree, ctx or _Ctx()):
            self._visit(node, c)
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
        return self.res.qual(node)

    def scope(self, ctx: _Ctx) -> _Scope:
        key = id(ctx.func) if ctx.func is not None else 0
        return self.scopes.setdefault(key, _Scope(module=ctx.func is None))

    # per node

    def _visit(self, node: ast.AST, ctx: _Ctx) -> None:
        info = self.info
        if isinstance(node, ast.stmt):
            self._statement(node, ctx)
        if any(_TESTISH.search(c) for c in _compared(node, self.res)):
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
        elif isinstance(node, ast.ClassDef):
            self._class(node, ctx)
        elif isinstance(node, ast.Dict):
            # type("Word", (str,), {"__eq__": lambda self, other: True})
            for key, value in zip(node.keys, node.values, strict=True):
                name = self.res.fold(key) if key is not None else None
                if name in _COMPARISONS and isinstance(value, ast.Lambda):
                    self._comparison("", name, value, value, ctx)
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
        if isinstance(node, (ast.BinOp, ast.Call, ast.JoinedStr, ast.Subscript)):
            self._built(node, ctx)

    def _built(self, node: ast.BinOp | ast.Call | ast.JoinedStr | ast.Subscript, ctx: _Ctx) -> None:
        """A string built from literals is read like one (`"".join(["PYTEST_", "CURRENT"])`);
        a watched namespace subscripted by a key spelled out of pieces is obfuscated-access."""
        folded = self.res.fold(node) if id(node) not in self.consumed else None
        if folded is not None:
            self._string(folded, node, ctx)
        if isinstance(node, ast.Subscript):
            owner = self.res.namespace_of(node.value)
            if owner is not None:
                label = f"vars({owner})[{{}}]"
                self._indirect(label, owner, node.slice, node, ctx, computed=False)
            elif self.qual(node.value) == "sys.modules" and not self.info.test_file:
                key = self.res.fold(node.slice)
                hidden = key is not None and (_is_watched(_root(key)) or _TEST_MODULE.match(key))
                if hidden and not self._plain(node.slice):
                    detail = f"sys.modules[{key!r} spelled out of pieces]"
                    self.add(OBFUSCATED_ACCESS, node, detail, "indirect", ctx)

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
        q = _builtin_call(self.qual(node.func))
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
            elif q in ("setattr", "delattr") and first is not None and len(node.args) >= 2:
                target = self.qual(first)
                attrs = self._attr_names(node.args[1]) or ("",)
                for attr in attrs:
                    if target is not None:
                        self._patched(f"{target}.{attr}" if attr else target, node, ctx)
                    if attr in _COMPARISONS and q == "setattr" and len(node.args) == 3:
                        value = node.args[2]
                        if isinstance(value, ast.Lambda):
                            self._comparison("", attr, value, node, ctx)
            elif method in ("update", "__setitem__", "setdefault") and receiver is not None:
                if _is_builtins_dict(receiver, self.res):
                    self.add(SYS_MODULES, node, "patches builtins", "builtins", ctx)
        # dynamic imports and look-ups of the runner
        name = self.res.fold(first) if first is not None else None
        if q in ("importlib.import_module", "__import__") and first is not None and name:
            hidden = _is_watched(_root(name)) or bool(_TEST_MODULE.match(name))
            if hidden and not info.test_file and not self._plain(first):
                detail = f"imports {name!r} by a name spelled out of pieces"
                self.add(OBFUSCATED_ACCESS, node, detail, "indirect", ctx)
            if _TEST_MODULE.match(name):
                self.consumed.add(id(first))
                if not info.test_file and not info.support and name != "doctest":
                    self.add(PYTEST_INTERNALS, node, f"imports {name}", None, ctx)
        if q in ("importlib.util.find_spec", "pkgutil.find_loader", "importlib.find_loader"):
            looked_up = [*_strings(node), *(f for a in node.args if (f := self.res.fold(a)))]
            if not info.test_file and any(_TEST_MODULE.match(s) for s in looked_up):
                self.add(TEST_DETECTION, node, f"{q} of a test runner", None, ctx)
        # obfuscated-access: a watched module reached by a name the diff does not spell out,
        # code run from decoded data
        if q in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2:
            target = self.qual(node.args[0])
            write = q in ("setattr", "delattr")
            self._indirect(f"{q}({target}, {{}})", target, node.args[1], node, ctx, write)
        elif method == "__getattribute__" and len(node.args) == 1:
            self._indirect(f"{owner}.__getattribute__({{}})", owner, node.args[0], node, ctx)
        elif q == "object.__getattribute__" and len(node.args) == 2:
            target = self.qual(node.args[0])
            label = f"object.__getattribute__({target}, {{}})"
            self._indirect(label, target, node.args[1], node, ctx)
        if q in ("exec", "eval", "compile"):
            source = first
            for kw in node.keywords:
                if kw.arg in ("source", "object"):
                    source = kw.value
            if source is not None:
                self._run_code(q, source, node, ctx)
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

    def _attr_names(self, node: ast.AST) -> tuple[str, ...] | None:
        """The attribute name(s) `node` stands for: a (built) literal, or the literals a loop
        runs its variable over."""
        folded = self.res.fold(node)
        return (folded,) if folded is not None else self.res.loop_values(node)

    def _plain(self, node: ast.AST, depth: int = 0) -> bool:
        """A string literal, or a name bound to one (or looping over some: a tuple of them,
        `"a b".split()`)."""
        if _is_plain_string(node):
            return True
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return bool(node.elts) and all(self._plain(e, depth) for e in node.elts)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
            return node.func.attr == "split" and self._plain(node.func.value, depth)
        if isinstance(node, ast.Name) and depth < 8:
            bound = self.res.binding(node)
            if isinstance(bound, _Loop):
                return self._plain(bound.items, depth + 1)
            return isinstance(bound, ast.expr) and self._plain(bound, depth + 1)
        return False

    def _indirect(
        self,
        label: str,
        owner: str | None,
        name: ast.AST,
        node: ast.AST,
        ctx: _Ctx,
        write: bool = False,
        computed: bool = True,
    ) -> None:
        """`getattr(sys, <name>)` and the like: a module the rules watch reached by a name the
        diff does not spell out. `label` has a `{}` for the name."""
        if self.info.test_file or owner is None or not _is_watched(owner) or self._plain(name):
            return
        folded = self.res.fold(name)
        if folded is not None:
            detail = label.format(f"{folded!r} spelled out of pieces")
        elif not computed:
            return
        elif isinstance(name, (ast.Name, ast.Attribute)) and not write and owner == "builtins":
            return  # a name looked up among the builtins, as an evaluator does
        else:
            detail = label.format("a name computed at run time")
        self.add(OBFUSCATED_ACCESS, node, detail, "indirect", ctx)

    def _run_code(self, q: str, source: ast.expr, node: ast.Call, ctx: _Ctx) -> None:
        """exec/eval/compile: of decoded or decompressed data, hidden code; of a string known
        from the diff (literal or built from literals), the code it runs is screened here."""
        hidden = self.res.decoder(source)
        if hidden is not None:
            self.add(OBFUSCATED_ACCESS, node, f"{q} of decoded code ({hidden})", None, ctx)
        payload = self.res.value(source)
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError:
                return
        if not isinstance(payload, str) or self.depth >= _MAX_DEPTH:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(payload)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        inner = _AstScanner(self.info, tree, self.aliases, self.depth + 1)
        for f in inner.scan(ctx):
            detail = f"{f.detail}, in the code it runs"
            self.found.append(_Finding(f.rule, node.lineno, detail, f.kind))

    def _class(self, node: ast.ClassDef, ctx: _Ctx) -> None:
        """always-equal: comparison methods that do not compare (project code only: a test
        helper may well define an object equal to anything)."""
        if self.info.test_file or self.info.support:
            return
        base = next((b for b in map(self._builtin_base, node.bases) if b), None)
        verdicts: dict[str, tuple[ast.AST, _Verdict]] = {}
        for stmt in node.body:
            for name, fn in _comparison_defs(stmt):
                verdict = _verdict(fn)
                if verdict is not None:
                    verdicts[name] = (stmt, verdict)
                elif base is not None and name in ("__eq__", "__ne__") and not _reads_self(fn):
                    detail = f"{node.name}({base}).{name} never reads its own value"
                    self.add(ALWAYS_EQUAL, stmt, detail, "always-equal", ctx)
        for name, (where, verdict) in verdicts.items():
            if name in _TYPE_CHECKS and verdict.code == "any":
                continue  # `isinstance(inst, int)`: how a virtual int type says what it is
            detail = f"{node.name}.{name} {verdict.text}"
            if name in _ORDERING and base is None:
                # an Infinity is greater than anything; nothing is both greater and smaller
                opposite = verdicts.get(_OPPOSITE[name])
                if verdict.code != "true" or opposite is None or opposite[1].code != "true":
                    continue
                detail = f"{node.name}.{name} and {_OPPOSITE[name]} both return True"
            self.add(ALWAYS_EQUAL, where, detail, "always-equal", ctx)

    def _comparison(self, owner: str, name: str, fn: _TypeFn, where: ast.AST, ctx: _Ctx) -> None:
        """A comparison method defined outside a class body: `Word.__eq__ = lambda s, o: True`,
        `type("Word", (str,), {"__eq__": ...})`."""
        if self.info.test_file or self.info.support or name in _ORDERING:
            return
        verdict = _verdict(fn)
        if verdict is not None and not (name in _TYPE_CHECKS and verdict.code == "any"):
            detail = f"{owner + '.' if owner else ''}{name} {verdict.text}"
            self.add(ALWAYS_EQUAL, where, detail, "always-equal", ctx)

    def _builtin_base(self, base: ast.expr) -> str | None:
        """`str` for a class deriving from str (int, list...), or from collections.UserString."""
        if isinstance(base, ast.Name) and base.id in _BUILTIN_TYPES - {"object"}:
            if base.id not in self.aliases and not self.res.is_bound(base):
                return base.id
        q = self.qual(base)
        if q is not None and (q in _USER_TYPES or _builtin_call(q) in _BUILTIN_TYPES - {"object"}):
            return q
        return None

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
                elif _is_builtins_dict(target.value, self.res):
                    self.add(SYS_MODULES, target, "patches builtins", "builtins", ctx)
            elif isinstance(target, ast.Attribute):
                value = getattr(node, "value", None)
                if target.attr in _COMPARISONS and isinstance(value, ast.Lambda):
                    self._comparison("", target.attr, value, target, ctx)
                q = self.qual(target)
                if q is not None:
                    self._patched(q, target, ctx)

    def _patched(self, q: str, node: ast.AST, ctx: _Ctx) -> None:
        """An assignment to (or deletion of) the module attribute `q`, e.g. `os._exit`."""
        root = _root(q)
        if root in _PATCH_ROOTS:
            if not self.info.support:
                self.add(PYTEST_INTERNALS, node, f"patches {q}", None, ctx)
        elif root == "builtins":
            self.add(SYS_MODULES, node, f"patches {q}", "builtins", ctx)
        elif q in _PATCHED_ATTRS or root in _PATCHED_MODULES:
            self.add(SYS_MODULES, node, f"patches {q}", None, ctx)

    def _statement(self, stmt: ast.stmt, ctx: _Ctx) -> None:
        """Rules about one statement's own expressions (not the statements in its body)."""
        own = _own_nodes(stmt)
        strings = [n.value for n in own if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        # and strings built from literals, or names bound to them (`runner = "py" + "test"`)
        built = (ast.Name, ast.BinOp, ast.Call, ast.JoinedStr, ast.Subscript)
        strings += [f for n in own if isinstance(n, built) and (f := self.res.fold(n)) is not None]
        if not strings:
            return
        kinds = (ast.Attribute, ast.Name, ast.Call, ast.Subscript)
        names = {q for n in own if isinstance(n, kinds) if (q := self.qual(n))}
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
        strings = _compared(node, self.res)
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
_MAX_DEPTH = 3
#: Modules whose attributes a fix never needs to reach by a computed name.
_WATCHED_MODULES = {
    "sys",
    "os",
    "posix",
    "nt",
    "builtins",
    "importlib",
    "importlib.util",
    "gc",
    "atexit",
    "inspect",
    "site",
    "doctest",
}


def _is_watched(module: str) -> bool:
    return module in _WATCHED_MODULES or _root(module) in _RUNNER_ROOTS


_SITE_DIR_STRING = re.compile(r"(?i)(?:site|dist)-packages")
_BYTECODE_STRING = re.compile(r"(?i)\.py[co]\b|__pycache__")


#: Calls that compare their string arguments with something.
_MATCH_METHODS = {"startswith", "endswith", "find", "rfind", "index", "rindex", "count"}
_MATCH_CALLS = {"re.search", "re.match", "re.fullmatch", "fnmatch.fnmatch", "fnmatch.filter"}


def _compared(node: ast.AST, res: _Resolver) -> list[str]:
    """The strings `node` compares something with: the operands of `in`/`==`/..., the
    arguments of `startswith`/`re.search`/...; a string that is only printed is not one."""
    if isinstance(node, ast.Compare):
        operands: list[ast.expr] = [node.left, *node.comparators]
    elif isinstance(node, ast.Call) and (
        _method(node) in _MATCH_METHODS or res.qual(node.func) in _MATCH_CALLS
    ):
        operands = list(node.args)
    else:
        return []
    out: list[str] = []
    for op in operands:
        items = op.elts if isinstance(op, (ast.Tuple, ast.List, ast.Set)) else [op]
        for item in items:
            folded = res.fold(item)
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


def _add_aliases(node: ast.Import | ast.ImportFrom, out: dict[str, str]) -> None:
    """Local name -> what it was imported as (`from sys import exit as bye`: bye -> sys.exit)."""
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.asname:
                out[a.asname] = a.name
            else:
                root = a.name.split(".", 1)[0]
                out[root] = root
    elif node.module and not node.level:
        for a in node.names:
            if a.name != "*":
                out[a.asname or a.name] = f"{node.module}.{a.name}"


def _root(q: str) -> str:
    return q.split(".", 1)[0]


def _is_builtins_dict(node: ast.AST, res: _Resolver) -> bool:
    """`__builtins__`, `builtins.__dict__` or `vars(builtins)`."""
    q = res.qual(node)
    if q in ("builtins", "builtins.__dict__"):
        return True
    if isinstance(node, ast.Call) and res.qual(node.func) == "vars" and node.args:
        return res.qual(node.args[0]) == "builtins"
    return False


def _unpack(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [x for e in target.elts for x in _unpack(e)]
    if isinstance(target, ast.Starred):
        return _unpack(target.value)
    return [target]


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


# --- always-equal: comparisons that do not compare ---------------------------------------------

_EQUALITY = ("__eq__", "__ne__", "__contains__")
_ORDERING = ("__lt__", "__le__", "__gt__", "__ge__")
_TYPE_CHECKS = ("__instancecheck__", "__subclasscheck__", "__subclasshook__")
_COMPARISONS = {*_EQUALITY, *_ORDERING, *_TYPE_CHECKS}
#: `x < y` and `x > y` both true for any y: no order does that (an Infinity is only one of them).
_OPPOSITE = {"__lt__": "__gt__", "__gt__": "__lt__", "__le__": "__ge__", "__ge__": "__le__"}
_BUILTIN_TYPES = {
    "str",
    "int",
    "float",
    "complex",
    "bytes",
    "bytearray",
    "list",
    "tuple",
    "dict",
    "set",
    "frozenset",
    "bool",
    "object",
}
_USER_TYPES = {"collections.UserString", "collections.UserList", "collections.UserDict"}
_TypeFn = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass(frozen=True)
class _Verdict:
    #: "true": returns True whatever it is given; "false"; "ignores": never reads it; "any":
    #: True for any value of a builtin type.
    code: str
    text: str


def _comparison_defs(stmt: ast.stmt) -> list[tuple[str, _TypeFn]]:
    """The comparison methods a class-body statement defines: `def __eq__`, `__eq__ = lambda`."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [(stmt.name, stmt)] if stmt.name in _COMPARISONS else []
    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda):
        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        return [(n, stmt.value) for n in names if n in _COMPARISONS]
    return []


def _params(fn: _TypeFn) -> tuple[list[str], list[str]]:
    """(the names that can hold the receiver, the names that can hold what it is compared with)."""
    args = fn.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    star = [args.vararg.arg] if args.vararg else []
    return positional[:1] + star, positional[1:] + star


def _body(fn: _TypeFn) -> list[ast.stmt]:
    if isinstance(fn, ast.Lambda):
        return [ast.Return(value=fn.body)]
    body = fn.body
    return body[1:] if body and _is_bare_string(body[0]) and len(body) > 1 else body


def _own_returns(body: list[ast.stmt]) -> tuple[list[ast.expr | None], bool]:
    """The values `body` returns (not its nested functions'), and whether it can raise."""
    values: list[ast.expr | None] = []
    raises = False
    stack: list[ast.AST] = list(body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(n, ast.Return):
            values.append(n.value)
        elif isinstance(n, (ast.Raise, ast.Assert)):
            raises = True
        stack.extend(ast.iter_child_nodes(n))
    return values, raises


def _reads(body: list[ast.stmt]) -> set[str]:
    return {n.id for b in body for n in ast.walk(b) if isinstance(n, ast.Name)}


def _is_const(node: ast.AST | None, value: bool) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is value
    if value and isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return any(_is_const(v, True) for v in node.values)  # `... or True`
    return False


def _is_not_implemented(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Name) and node.id == "NotImplemented"


def _type_names(node: ast.AST) -> set[str] | None:
    """`str` or `(str, bytes)`: the builtin types named, None if anything else is."""
    items = node.elts if isinstance(node, ast.Tuple) else [node]
    out = {i.id for i in items if isinstance(i, ast.Name) and i.id in _BUILTIN_TYPES}
    return out if len(out) == len(items) else None


def _builtin_checks(test: ast.AST, other: list[str]) -> set[str] | None:
    """The builtin types `test` checks the compared value against (`isinstance(other, str)`,
    `type(other) is int`), if that is all it reads of it; None if it reads it otherwise or
    not at all."""
    types: set[str] = set()
    checked: set[int] = set()
    for n in ast.walk(test):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and len(n.args) == 2:
            subject, cls = n.args
            if n.func.id in ("isinstance", "issubclass") and isinstance(subject, ast.Name):
                named = _type_names(cls)
                if subject.id in other and named is not None:
                    types |= named
                    checked.add(id(subject))
        elif isinstance(n, ast.Compare) and len(n.ops) == 1:
            left, right = n.left, n.comparators[0]
            if isinstance(n.ops[0], (ast.Is, ast.Eq)) and isinstance(left, ast.Call):
                if isinstance(left.func, ast.Name) and left.func.id == "type" and left.args:
                    subject = left.args[0]
                    named = _type_names(right)
                    if isinstance(subject, ast.Name) and subject.id in other and named:
                        types |= named
                        checked.add(id(subject))
    reads = [n for n in ast.walk(test) if isinstance(n, ast.Name) and n.id in other]
    if not reads or any(id(n) not in checked for n in reads):
        return None
    return types


def _verdict(fn: _TypeFn) -> _Verdict | None:
    """What is wrong with a comparison method, None if nothing: it never reads what it is
    compared with, returns one constant, or returns True for any str (int...). An ordinary one
    reads the other value, returns `NotImplemented` for types it does not know, or only raises."""
    body = _body(fn)
    _self, other = _params(fn)
    values, raises = _own_returns(body)
    answers = [v for v in values if not _is_not_implemented(v)]
    if not answers or all(v is None for v in answers):
        return None
    if not other or not _reads(body) & set(other):
        if all(_is_const(v, True) for v in answers):
            return _Verdict("true", "returns True, whatever it is compared with")
        if all(_is_const(v, False) for v in answers):
            return _Verdict("false", "returns False, whatever it is compared with")
        return _Verdict("ignores", "never reads what it is compared with")
    if all(_is_const(v, True) for v in answers) and len(answers) == len(values) and not raises:
        return _Verdict("true", "returns True, whatever it is compared with")
    # `isinstance(other, str)` is all that stands between any str and True
    types: set[str] = set()
    for n in (x for b in body for x in ast.walk(b)):
        if isinstance(n, ast.If) and any(
            isinstance(s, ast.Return) and _is_const(s.value, True) for s in n.body
        ):
            found = _builtin_checks(n.test, other)
            if found:
                types |= found
        elif isinstance(n, ast.Return) and isinstance(n.value, ast.Call):
            found = _builtin_checks(n.value, other)
            if found:
                types |= found
    if not types and all(_is_const(v, True) for v in answers):
        # every answer is True, only guarded: by checks of a builtin type alone?
        guards = [
            _builtin_checks(n.test, other)
            for b in body
            for n in ast.walk(b)
            if isinstance(n, (ast.If, ast.Assert)) and _reads([n]) & set(other)
        ]
        if guards and all(g for g in guards):
            types = {t for g in guards if g for t in g}
    if types:
        return _Verdict("any", f"returns True for any {'/'.join(sorted(types))}")
    return None


def _reads_self(fn: _TypeFn) -> bool:
    receiver, _other = _params(fn)
    return bool(_reads(_body(fn)) & {*receiver, "super", "__class__"})


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


_T, _PI, _S, _X, _R, _E, _O, _A = (
    TEST_DETECTION,
    PYTEST_INTERNALS,
    SYS_MODULES,
    REPORT_FILE,
    STARTUP_HOOK,
    EXIT_AT_IMPORT,
    OBFUSCATED_ACCESS,
    ALWAYS_EQUAL,
)
_WATCHED_RX = r"(?:sys|os|builtins|__builtins__|importlib|gc|atexit|inspect|site|_?pytest|unittest)"
_DECODER_RX = r"(?:b(?:64|32|16|85)decode|a85decode|unhexlify|fromhex|decompress|marshal\.loads)"
_COMPARISON_RX = r"__(?:eq|ne|contains|instancecheck|subclasscheck)__"

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
    (
        _O,
        rf"\b(?:get|set|has|del)attr\(\s*{_WATCHED_RX}\s*,\s*(?![\"'][\w.]*[\"']\s*[,)])",
        "a watched module's attribute by a computed name",
        "indirect",
        "s",
    ),
    (_O, rf"\b(?:exec|eval|compile)\(.*\b{_DECODER_RX}\b", "runs decoded code", None, ""),
    (
        _A,
        rf"\b{_COMPARISON_RX}\s*=\s*lambda[^:]*:\s*True\b",
        "a comparison that returns True",
        "always-equal",
        "s",
    ),
    (
        _A,
        rf"\bdef\s+{_COMPARISON_RX}\s*\([^)]*\)[^:]*:\s*return\s+True\b",
        "a comparison that returns True",
        "always-equal",
        "s",
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
