"""The only actions a model gets inside a code-changing loop: view, search, edit, run_tests, finish.

No shell, no network, no git: every action goes through one `Workspace` (which confines paths to
the tree) and an injected test runner (the loop decides how the sandbox runs). The same five
actions are offered two ways, because not every OpenAI-compatible server does tool calls:

- `tool_schemas()`: OpenAI function-tool definitions, for servers with tool calls;
- `action_schema()` + `parse_action()`: one JSON object `{"tool": ..., ...args}` constrained by a
  JSON schema (llama.cpp turns it into a grammar), for servers without.

`Toolbox.dispatch` never raises for anything the model can do wrong (unknown tool, bad JSON, bad
arguments, refused edit): it answers with an error string the model can act on, because an
exception would end the loop over a typo. Every answer is truncated to a per-call token budget,
so one `view` of a minified file cannot eat the whole loop's budget.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fnmatch
import json
import logging
import re
import tomllib
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.testresults import TestRun
from bot.text import truncate_to_tokens, untrusted_block
from bot.workspace import (
    SearchTextNotFound,
    SearchTextNotUnique,
    UnsafePathError,
    Workspace,
    WorkspaceError,
)
from loops.checkout import find_ruff

log = logging.getLogger("loopwright.tools")

ToolName = Literal["view", "search", "edit", "run_tests", "finish"]
TOOL_NAMES: tuple[ToolName, ...] = ("view", "search", "edit", "run_tests", "finish")

#: What the patch step may never edit: the reproduce step owns the tests, and a "fix" that edits
#: CI, packaging or test configuration can make a failing check pass without fixing anything.
PATCH_PROTECTED_PATHS: tuple[str, ...] = (
    "tests/**",
    "test/**",
    "**/tests/**",
    "test_*.py",
    "*_test.py",
    "**/conftest.py",
    "conftest.py",
    ".github/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    ".travis.yml",
    "azure-pipelines.yml",
    ".pre-commit-config.yaml",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "tox.ini",
    "noxfile.py",
    "pytest.ini",
    "requirements*.txt",
    "Makefile",
)

TestRunner = Callable[[list[str]], Awaitable[TestRun]]

#: Lint rules that mean "this code cannot run" (syntax errors, undefined names, `return` outside
#: a function, comparisons that are always wrong), not style.
FATAL_LINT_RULES = "E9,F63,F7,F82"
#: Of those, the ones an edit may leave for a later edit to resolve.
_UNDEFINED_NAME_RULES = ("F821", "F822")
_LINT_TIMEOUT_S = 20.0
_MAX_PATTERN_CHARS = 200
_MAX_SELECTION = 50

# A quantified group that itself contains a quantifier or an alternation, e.g. `(a+)+` or
# `(a|a)*`: the classic catastrophic-backtracking shapes. Python's `re` has no timeout and the
# search runs in a worker thread we cannot kill, so such patterns are refused up front.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*(?:[*+}|])(?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d*,)")


@dataclass(frozen=True)
class ToolBudgets:
    """Caps that keep each answer small; the loop's own budget counts calls and tokens."""

    output_tokens: int = 1500
    view_lines: int = 100
    line_chars: int = 300
    search_hits: int = 30
    search_line_chars: int = 200
    failing_ids: int = 20
    failure_messages: int = 3
    failure_message_chars: int = 600
    summary_chars: int = 2000
    #: None: unlimited. Once spent, every call answers with an error the model can read.
    max_calls: int | None = None


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    output: str
    finished: bool = False
    summary: str | None = None


@dataclass
class ToolStats:
    calls: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    edits_accepted: int = 0
    edits_refused: int = 0
    #: Why edits were refused: protected, unsafe_path, not_found, not_unique, syntax, lint, ...
    refusals: Counter[str] = field(default_factory=Counter)
    edited_paths: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "errors": self.errors,
            "edits_accepted": self.edits_accepted,
            "edits_refused": self.edits_refused,
            "refusals": dict(self.refusals),
            "edited_paths": sorted(self.edited_paths),
        }


# --- arguments ------------------------------------------------------------------------------


class _Args(BaseModel):
    # Unknown keys are refused so a misspelt argument is an error the model sees, not a silent
    # default.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ViewArgs(_Args):
    path: str = Field(min_length=1, max_length=500)
    start: int = 1
    end: int | None = None


class SearchArgs(_Args):
    pattern: str = Field(min_length=1, max_length=_MAX_PATTERN_CHARS)


class EditArgs(_Args):
    path: str = Field(min_length=1, max_length=500)
    search: str = Field(min_length=1, max_length=20_000)
    replace: str = Field(max_length=20_000)


class RunTestsArgs(_Args):
    selection: list[str] = Field(default_factory=list, max_length=_MAX_SELECTION)


class FinishArgs(_Args):
    summary: str = Field(min_length=1, max_length=10_000)


_ARG_MODELS: dict[str, type[_Args]] = {
    "view": ViewArgs,
    "search": SearchArgs,
    "edit": EditArgs,
    "run_tests": RunTestsArgs,
    "finish": FinishArgs,
}

_DESCRIPTIONS: dict[str, str] = {
    "view": "Show numbered lines start..end (1-based, inclusive) of one repository file; "
    "at most 100 lines per call.",
    "search": "Regular-expression search over the repository's text files; returns "
    "path:line: text for the first matches.",
    "edit": "Replace one exact, unique occurrence of `search` in a file with `replace`. Copy "
    "`search` verbatim from `view` output without the line numbers; include enough "
    "context to make it unique. Refused if the file stops parsing or the path is protected.",
    "run_tests": "Run tests in the sandbox. `selection` lists test ids or files "
    "(e.g. tests/test_x.py::test_y); an empty list runs the configured suite.",
    "finish": "Stop and report: a short summary of what was changed and why.",
}

# Hand-written rather than generated from the pydantic models: small servers' grammar
# converters choke on pydantic's `title`s and `anyOf [T, null]`; the tests check both agree.
_PARAMETERS: dict[str, dict[str, Any]] = {
    "view": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "file path relative to the repo root"},
            "start": {"type": "integer", "minimum": 1, "description": "first line"},
            "end": {"type": "integer", "minimum": 1, "description": "last line"},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
    "search": {
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "maxLength": _MAX_PATTERN_CHARS,
                "description": "Python regular expression, matched per line",
            }
        },
        "required": ["pattern"],
        "additionalProperties": False,
    },
    "edit": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "search": {"type": "string", "description": "exact text to replace"},
            "replace": {"type": "string", "description": "replacement text"},
        },
        "required": ["path", "search", "replace"],
        "additionalProperties": False,
    },
    "run_tests": {
        "type": "object",
        "properties": {
            "selection": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": _MAX_SELECTION,
            }
        },
        "required": ["selection"],
        "additionalProperties": False,
    },
    "finish": {
        "type": "object",
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
        "additionalProperties": False,
    },
}


def tool_schemas(tools: Iterable[str] = TOOL_NAMES) -> list[dict[str, Any]]:
    """OpenAI chat-completions `tools=` definitions (optionally a subset, e.g. no `edit`)."""
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": _DESCRIPTIONS[name],
                "parameters": json.loads(json.dumps(_PARAMETERS[name])),
            },
        }
        for name in tools
    ]


def action_schema(tools: Iterable[str] = TOOL_NAMES) -> dict[str, Any]:
    """A JSON schema for one reply `{"tool": "<name>", ...arguments}`, for servers without tool
    calls. `anyOf` rather than `oneOf`: the `tool` const already makes the branches exclusive,
    and more grammar converters support `anyOf`."""
    branches: list[dict[str, Any]] = []
    for name in tools:
        params = json.loads(json.dumps(_PARAMETERS[name]))
        branches.append(
            {
                "type": "object",
                "properties": {"tool": {"const": name}, **params["properties"]},
                "required": ["tool", *params["required"]],
                "additionalProperties": False,
            }
        )
    return {"anyOf": branches}


class ActionParseError(ValueError):
    """A JSON-mode reply that is not one valid action; the message is meant for the model."""


@dataclass(frozen=True)
class Action:
    tool: ToolName
    arguments: dict[str, Any]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_action(text: str) -> Action:
    """The action in a JSON-mode reply: the flat form `{"tool": "view", "path": ...}` or the
    nested form `{"tool": "view", "arguments": {...}}`, possibly inside a ``` fence or after a
    line of prose (small models add both even under a grammar-less JSON mode)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    data: Any = None
    decoder = json.JSONDecoder()
    for chunk in candidates:
        start = chunk.find("{")
        while start != -1:
            try:
                data, _end = decoder.raw_decode(chunk, start)
                break
            except json.JSONDecodeError:
                start = chunk.find("{", start + 1)
        if isinstance(data, dict):
            break
    if not isinstance(data, dict):
        raise ActionParseError('reply is not a JSON object like {"tool": "view", "path": "..."}')
    tool = data.get("tool")
    if tool not in _ARG_MODELS:
        raise ActionParseError(f"unknown tool {tool!r}; use one of {', '.join(TOOL_NAMES)}")
    if set(data) == {"tool", "arguments"} and isinstance(data["arguments"], dict):
        arguments = dict(data["arguments"])
    else:
        arguments = {k: v for k, v in data.items() if k != "tool"}
    try:
        _ARG_MODELS[tool].model_validate(arguments)
    except ValidationError as exc:
        raise ActionParseError(f"bad arguments for {tool}: {_explain(exc)}") from None
    return Action(tool=tool, arguments=arguments)


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# --- path policy ----------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """gitignore-like globs: `*` and `?` stay inside one path segment, `**` crosses segments,
    `**/` also matches no directory at all, and a pattern without `/` matches a file name at
    any depth (so `conftest.py` protects every conftest, not just the root one)."""
    if "/" not in pattern:
        pattern = "**/" + pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            close = pattern.find("]", i + 1)
            if close == -1:
                out.append(re.escape("["))
                i += 1
            else:
                # fnmatch already knows how to turn a bracket class into a regex class.
                out.append(fnmatch.translate(pattern[i : close + 1])[4:-3])
                i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def normalize_path(path: str) -> str:
    """The canonical relative form the policy checks (`./a//b` → `a/b`), as the workspace
    would resolve it; absolute and `..` paths are refused by the workspace itself."""
    return PurePosixPath(path.replace("\\", "/")).as_posix().lstrip("/")


class PathPolicy:
    """Glob patterns an edit is refused for."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._regexes = [_glob_regex(p) for p in self.patterns]

    def match(self, path: str) -> str | None:
        """The first pattern protecting `path`, or None."""
        norm = normalize_path(path)
        for pattern, regex in zip(self.patterns, self._regexes, strict=True):
            if regex.match(norm):
                return pattern
        return None


# --- syntax and lint checks -----------------------------------------------------------------


def _parse_error(path: str, text: str) -> str | None:
    """Why `text` does not parse as the file type `path` names, or None (unknown types pass)."""
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if suffix in (".py", ".pyi"):
            with warnings.catch_warnings():
                # Invalid escape sequences etc. warn at parse time; they are not our verdict.
                warnings.simplefilter("ignore")
                ast.parse(text, filename=path)
        elif suffix == ".json":
            json.loads(text)
        elif suffix == ".toml":
            tomllib.loads(text)
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:
        # ValueError covers json/toml errors and source containing NUL bytes; a pathologically
        # nested expression raises RecursionError/MemoryError instead of SyntaxError.
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


async def fatal_lint(ruff: str, path: str, text: str) -> Counter[str] | None:
    """Fatal lint findings of `text` as a multiset of "CODE message" (no line numbers, so an
    edit that only shifts lines changes nothing); None when ruff could not give a verdict.

    ruff only parses, so it runs on the host; `--isolated` ignores the repository's own ruff
    config (which the model could not have edited anyway, but a repo could select rules away),
    and `--ignore-noqa` so that a `# noqa` added by the edit cannot hide what it broke.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            ruff,
            "check",
            "--isolated",
            "--ignore-noqa",
            "--no-cache",
            "--select",
            FATAL_LINT_RULES,
            "--output-format",
            "json",
            "--stdin-filename",
            path,
            "-",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        log.warning("ruff did not start: %s", exc)
        return None
    try:
        out, err = await asyncio.wait_for(proc.communicate(text.encode()), _LINT_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        log.warning("ruff timed out on %s", path)
        return None
    if proc.returncode not in (0, 1):
        log.warning("ruff failed on %s: %s", path, err.decode(errors="replace")[:300])
        return None
    try:
        findings = json.loads(out or b"[]")
    except json.JSONDecodeError:
        return None
    return Counter(f"{f.get('code')} {f.get('message')}" for f in findings)


# --- the toolbox ----------------------------------------------------------------------------


def number_lines(lines: Sequence[str], first: int, max_chars: int = 300) -> list[str]:
    """`  12| code` lines, each cut to `max_chars` (a minified line must not fill the window)."""
    width = len(str(first + len(lines) - 1))
    out = []
    for offset, line in enumerate(lines):
        text = line.rstrip("\r\n")
        if len(text) > max_chars:
            text = f"{text[:max_chars]}[… line cut]"
        out.append(f"{first + offset:>{width}}| {text}")
    return out


class Toolbox:
    """The five actions over one workspace. Not safe for concurrent calls (one model turn at a
    time is the loop's shape anyway)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        run_tests: TestRunner | None = None,
        protected: Iterable[str] = PATCH_PROTECTED_PATHS,
        budgets: ToolBudgets | None = None,
        lint: bool = True,
        tools: Iterable[str] = TOOL_NAMES,
    ) -> None:
        self.workspace = workspace
        self.policy = PathPolicy(protected)
        self.budgets = budgets or ToolBudgets()
        self.tools: tuple[str, ...] = tuple(t for t in TOOL_NAMES if t in set(tools))
        self.stats = ToolStats()
        self.finished = False
        self.summary: str | None = None
        self._run_tests = run_tests
        self._ruff = find_ruff() if lint else None
        self._note = ""

    def tool_schemas(self) -> list[dict[str, Any]]:
        return tool_schemas(self.tools)

    def action_schema(self) -> dict[str, Any]:
        return action_schema(self.tools)

    # -- entry points --------------------------------------------------------------------------

    async def dispatch(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """Run one tool call; never raises for the model's mistakes (only for cancellation)."""
        self.stats.calls[name] += 1
        if name not in self.tools:
            return self._error(f"unknown tool {name!r}; available: {', '.join(self.tools)}")
        limit = self.budgets.max_calls
        if limit is not None and sum(self.stats.calls.values()) > limit:
            return self._error(f"tool call budget exhausted ({limit} calls); call finish")
        if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            arguments = {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                return self._error(f"arguments for {name} are not valid JSON: {exc.msg}")
        if not isinstance(arguments, Mapping):
            return self._error(f"arguments for {name} must be a JSON object")
        try:
            args = _ARG_MODELS[name].model_validate(dict(arguments))
        except ValidationError as exc:
            return self._error(f"bad arguments for {name}: {_explain(exc)}")
        try:
            result = await self._call(name, args)
        except Exception as exc:
            # A bug or an unexpected filesystem state must not end the loop mid-turn; the
            # log keeps the traceback, the model gets one line.
            log.exception("tool %s failed", name)
            return self._error(f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}")
        if not result.ok:
            self.stats.errors += 1
        return ToolResult(
            ok=result.ok,
            output=self._cap(result.output),
            finished=result.finished,
            summary=result.summary,
        )

    async def dispatch_text(self, text: str) -> ToolResult:
        """A JSON-mode reply: parse it, then dispatch; an unparsable reply is an error result."""
        try:
            action = parse_action(text)
        except ActionParseError as exc:
            self.stats.calls["<invalid>"] += 1
            return self._error(str(exc))
        return await self.dispatch(action.tool, action.arguments)

    async def _call(self, name: str, args: _Args) -> ToolResult:
        if isinstance(args, ViewArgs):
            return await self.view(args.path, args.start, args.end)
        if isinstance(args, SearchArgs):
            return await self.search(args.pattern)
        if isinstance(args, EditArgs):
            return await self.edit(args.path, args.search, args.replace)
        if isinstance(args, RunTestsArgs):
            return await self.run_tests(args.selection)
        if isinstance(args, FinishArgs):
            return self.finish(args.summary)
        raise AssertionError(f"no handler for {name}")

    # -- the actions ---------------------------------------------------------------------------

    async def view(self, path: str, start: int = 1, end: int | None = None) -> ToolResult:
        try:
            text = await self.workspace.read_file(path)
        except UnsafePathError as exc:
            return ToolResult(False, f"error: {exc}")
        except (WorkspaceError, OSError):
            return ToolResult(False, f"error: {path!r} is not a file in the repository")
        if "\x00" in text[:8192]:
            return ToolResult(False, f"error: {path!r} is a binary file")
        lines = text.splitlines()
        total = len(lines)
        if total == 0:
            return ToolResult(True, f"{path} is empty")
        first = min(max(start, 1), total)
        last = total if end is None else min(max(end, first), total)
        notes = []
        if last - first + 1 > self.budgets.view_lines:
            last = first + self.budgets.view_lines - 1
            notes.append(f"window capped at {self.budgets.view_lines} lines")
        if start > total:
            notes.append(f"start {start} is past the end")
        # Fill line by line under the budget, so a cut lands on a line boundary and the model
        # knows exactly where to continue.
        budget_chars = int(self.budgets.output_tokens * 3.5) - 200
        shown: list[str] = []
        used = 0
        for line in number_lines(lines[first - 1 : last], first, self.budgets.line_chars):
            if used + len(line) + 1 > budget_chars and shown:
                break
            shown.append(line)
            used += len(line) + 1
        shown_last = first + len(shown) - 1
        if shown_last < last:
            notes.append(f"output budget reached; continue with start={shown_last + 1}")
        header = f"{path} lines {first}-{shown_last} of {total}"
        if notes:
            header += f" ({'; '.join(notes)})"
        return ToolResult(True, f"{header}\n{untrusted_block('file', chr(10).join(shown))}")

    async def search(self, pattern: str) -> ToolResult:
        if _NESTED_QUANTIFIER.search(pattern):
            return ToolResult(
                False, "error: nested repetition like (a+)+ is not allowed; simplify the pattern"
            )
        note = ""
        try:
            re.compile(pattern)
        except re.error as exc:
            # Models often pass code such as `area(` as the pattern; searching it literally is
            # almost always what they meant.
            note = f" (not a valid regex: {exc}; searched literally)"
            pattern = re.escape(pattern)
        cap = self.budgets.search_hits
        try:
            hits = await self.workspace.search(pattern, max_results=cap + 1)
        except WorkspaceError as exc:
            return ToolResult(False, f"error: {exc}")
        if not hits:
            return ToolResult(True, f"no matches{note}")
        more = len(hits) > cap
        hits = hits[:cap]
        width = self.budgets.search_line_chars
        lines = []
        for hit in hits:
            text = hit.text.strip()
            if len(text) > width:
                text = f"{text[:width]}[… cut]"
            lines.append(f"{hit.path}:{hit.line}: {text}")
        files = len({h.path for h in hits})
        header = f"{len(hits)} matches in {files} files{note}"
        if more:
            header += f"; more not shown (first {cap} only), narrow the pattern"
        return ToolResult(True, f"{header}\n{untrusted_block('search', chr(10).join(lines))}")

    async def edit(self, path: str, search: str, replace: str) -> ToolResult:
        self._note = ""
        refused = await self._edit(path, search, replace)
        if refused is not None:
            reason, message = refused
            self.stats.edits_refused += 1
            self.stats.refusals[reason] += 1
            return ToolResult(False, f"edit refused: {message}")
        self.stats.edits_accepted += 1
        self.stats.edited_paths.add(normalize_path(path))
        return ToolResult(True, f"edited {normalize_path(path)}{self._note}")

    async def _edit(self, path: str, search: str, replace: str) -> tuple[str, str] | None:
        """None when the edit is applied and kept; else (reason, message), file untouched."""
        ws = self.workspace
        pattern = self.policy.match(path)
        if pattern is not None:
            return "protected", f"{path!r} is protected ({pattern}); edit the source instead"
        try:
            before = await ws.read_file(path)
        except UnsafePathError as exc:
            return "unsafe_path", str(exc)
        except (WorkspaceError, OSError):
            return "not_found", f"{path!r} is not a file in the repository"
        # The workspace follows links inside the tree, so `src/link.py -> ../tests/x.py` would
        # slip past a check of the given name alone: check where it really lands too.
        root = ws.root.resolve()
        real = (root / normalize_path(path)).resolve()
        if real.is_relative_to(root):
            pattern = self.policy.match(real.relative_to(root).as_posix())
            if pattern is not None:
                return "protected", f"{path!r} leads to a protected file ({pattern})"
        try:
            # read_file decodes with universal newlines; the bytes are what we must restore.
            original = real.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return "not_found", f"{path!r} is not a UTF-8 text file"
        try:
            await ws.edit(path, search, replace)
        except SearchTextNotUnique as exc:
            return "not_unique", f"{exc}; include more surrounding lines"
        except SearchTextNotFound as exc:
            return "not_found", f"{exc}; copy the text exactly from view output"
        except UnsafePathError as exc:
            return "unsafe_path", str(exc)
        except UnicodeDecodeError:
            return "not_found", f"{path!r} is not a UTF-8 text file"
        after = await ws.read_file(path)
        verdict = await self._check(path, before, after)
        if verdict is not None:
            await ws.write_file(path, original)
        return verdict

    async def _check(self, path: str, before: str, after: str) -> tuple[str, str] | None:
        broken = _parse_error(path, after)
        # Judge only what the edit broke: a file that never parsed on this interpreter (newer
        # syntax than ours, a template) does not make every edit to it fail.
        if broken is not None and _parse_error(path, before) is None:
            return "syntax", f"the file would no longer parse: {broken}; file left unchanged"
        if self._ruff is None or PurePosixPath(path).suffix.lower() not in (".py", ".pyi"):
            return None
        new = await fatal_lint(self._ruff, path, after)
        if not new:
            return None
        old = await fatal_lint(self._ruff, path, before)
        if old is None:
            return None
        gained = new - old
        # A name used before the edit that defines it is how multi-edit changes are written
        # (call a new helper, then add it): kept, with a note; the tests judge the end state.
        undefined = sorted(k for k in gained if k.startswith(_UNDEFINED_NAME_RULES))
        fatal = sorted(k for k in gained if not k.startswith(_UNDEFINED_NAME_RULES))
        if fatal:
            listed = "; ".join(fatal[:5])
            return "lint", f"the edit introduces fatal errors: {listed}; file left unchanged"
        if undefined:
            self._note = (
                f"; note: {'; '.join(undefined[:5])} — define it in a later edit, or the tests "
                "will fail"
            )
        return None

    async def run_tests(self, selection: list[str]) -> ToolResult:
        if self._run_tests is None:
            return ToolResult(False, "error: run_tests is not available in this step")
        for item in selection:
            # Test ids reach the runner's argv: an option (`-p plugin`, `--rootdir`) there
            # would let the model reconfigure the run that judges it.
            if not item or item.startswith("-") or any(c in item for c in "\x00\n\r"):
                return ToolResult(False, f"error: {item!r} is not a test id or path")
        run = await self._run_tests(list(selection))
        return ToolResult(True, summarize_run(run, self.budgets))

    def finish(self, summary: str) -> ToolResult:
        cut = summary[: self.budgets.summary_chars]
        self.finished = True
        self.summary = cut
        return ToolResult(True, "finished", finished=True, summary=cut)

    # -- helpers -------------------------------------------------------------------------------

    def _cap(self, text: str) -> str:
        return truncate_to_tokens(text, self.budgets.output_tokens)[0]

    def _error(self, message: str) -> ToolResult:
        self.stats.errors += 1
        return ToolResult(False, self._cap(f"error: {message}"))


def summarize_run(run: TestRun, budgets: ToolBudgets | None = None) -> str:
    """Counts, failing ids and the first failure messages: what the model needs to decide its
    next edit, in a few hundred tokens instead of the whole log."""
    b = budgets or ToolBudgets()
    counts = Counter(o.outcome for o in run.outcomes.values())
    parts = [f"{counts[k]} {k}" for k in ("passed", "failed", "error", "skipped") if counts[k]]
    head = f"exit code {run.exit_code}, {run.duration_s:.1f}s"
    if run.timed_out:
        head += ", TIMED OUT"
    if not run.junit_found:
        # Without JUnit the outcomes are unknown, not zero: show the log's tail instead.
        tail = truncate_to_tokens(run.output, 300)[0]
        return (
            f"test results unknown ({run.junit_error or 'no JUnit report'}); {head}\n"
            f"{untrusted_block('test-output', tail)}"
        )
    lines = [f"{', '.join(parts) or 'no tests ran'} ({head})"]
    failing = sorted(run.failing)
    if failing:
        lines.append("failing:")
        lines += [f"- {t}" for t in failing[: b.failing_ids]]
        if len(failing) > b.failing_ids:
            lines.append(f"- … and {len(failing) - b.failing_ids} more")
        messages = []
        for test_id in failing[: b.failure_messages]:
            msg = run.outcomes[test_id].message.strip()
            if len(msg) > b.failure_message_chars:
                msg = f"{msg[: b.failure_message_chars]}[… cut]"
            messages.append(f"## {test_id}\n{msg or '(no message)'}")
        lines.append(untrusted_block("test-output", "\n".join(messages)))
    return "\n".join(lines)
