"""Deterministic localization: which files and lines an issue is about, before any model call.

Three cheap signals, strongest first:

1. file references: traceback frames (`File "x.py", line N, in f`) and `path.py:123`, mapped onto
   repository files by path suffix, because tracebacks carry the reporter's absolute paths
   (`/home/u/proj/...`, `.../site-packages/pkg/...`); frames outside the repository are dropped;
2. identifiers the issue names (backticks, code blocks, `name(` calls, traceback function names),
   searched in the repository, a definition (`def name`/`class name`) weighing more than a use;
3. a compact repository map (each Python module with its top-level definitions and signatures),
   files from 1 and 2 first, cut to a token budget.

The model sees only what this selects, plus what it asks for through `view`/`search`. The issue
text is untrusted: it only ever selects among files that exist in the repository, and it is
stripped of hidden text first so it cannot steer localization in ways a reviewer cannot see.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple, Protocol

from bot.text import estimate_tokens, strip_hidden, untrusted_block
from bot.workspace import SearchHit, WorkspaceError
from loops.tools import number_lines


class RepoView(Protocol):
    """The read side of a `Workspace`; unit tests use an in-memory fake."""

    async def list_files(self, glob: str | None = None) -> list[str]: ...
    async def read_file(self, path: str, start: int = 1, end: int | None = None) -> str: ...
    async def search(
        self, pattern: str, max_results: int = 100, glob: str | None = None
    ) -> list[SearchHit]: ...


@dataclass(frozen=True)
class FileRef:
    """A file mentioned by the issue, as written (not yet mapped onto the repository)."""

    path: str
    line: int | None
    function: str | None
    kind: str  # "traceback" | "ref" | "mention"
    #: Position among the issue's traceback frames, 0 = outermost; None for other kinds.
    frame: int | None = None
    frames: int = 0


@dataclass
class Candidate:
    path: str
    line: int | None
    reason: str
    score: float


class Snippet(NamedTuple):
    path: str
    start: int
    end: int
    text: str


@dataclass
class Localization:
    candidates: list[Candidate] = field(default_factory=list)
    repo_map: str = ""
    snippets: list[Snippet] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)

    def files(self) -> list[str]:
        """Candidate files, best first."""
        return list(dict.fromkeys(c.path for c in self.candidates))

    def render(self, *, repo_map: bool = True) -> str:
        """The prompt section: candidates, then snippets and map as untrusted data blocks.
        Without `repo_map` when the reader has `view` and `search` and snippets to start from
        (the patch step): the map is the largest part and every turn would re-send it."""
        # Paths and reasons come from the repository and the issue: data, so inside the blocks.
        parts = []
        if self.candidates:
            listed = "\n".join(
                f"- {c.path}{f':{c.line}' if c.line else ''} ({c.reason})" for c in self.candidates
            )
            parts.append(f"Likely locations, best first:\n{untrusted_block('locations', listed)}")
        for snip in self.snippets:
            header = f"{snip.path} lines {snip.start}-{snip.end}"
            parts.append(untrusted_block("file", f"{header}\n{snip.text}"))
        if self.repo_map and (repo_map or not self.snippets):
            parts.append(f"Repository map:\n{untrusted_block('repo-map', self.repo_map)}")
        return "\n\n".join(parts)


# --- extraction (pure) ----------------------------------------------------------------------

MAX_ISSUE_CHARS = 50_000

_TRACEBACK_FRAME = re.compile(r'File "([^"\n]{1,500})", line (\d{1,7})(?:, in ([\w<>.]{1,200}))?')
# `pkg/mod.py:12`, `pkg/mod.py:12:5`, `C:\x\mod.py:12`; the path must contain a dot-extension.
_FILE_LINE = re.compile(
    r"(?<![\w/.\\-])((?:[A-Za-z]:)?[\w./\\-]{1,300}\.[A-Za-z]{1,6}):(\d{1,7})\b"
)
# A bare mention such as `src/widget.py` or widget.py in prose.
_FILE_MENTION = re.compile(r"(?<![\w/.\\-])([\w./\\-]{0,300}\w\.(?:py|pyi|pyx|cfg|toml|ini))\b")
_BACKTICKS = re.compile(r"`([^`\n]{1,200})`")
_CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CALL = re.compile(r"\b([A-Za-z_]\w{2,80})\s*\(")
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\b")
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+)?import\s+([\w.,\s]+)", re.MULTILINE)
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning)):", re.MULTILINE)

#: Names that say nothing about where a bug is: builtins, keywords, and pytest/unittest idiom.
_NOISE = frozenset(
    set(dir(builtins))
    | set(keyword.kwlist)
    | set(keyword.softkwlist)
    | {
        "self",
        "cls",
        "args",
        "kwargs",
        "main",
        "test",
        "tests",
        "pytest",
        "assert",
        "python",
        "import",
        "module",
        "none",
        "true",
        "false",
        "null",
        "json",
        "http",
        "https",
        "www",
        "com",
        "github",
        "pip",
        "install",
        "line",
        "file",
        "the",
        "and",
        "for",
        "this",
        "that",
        "with",
        "returns",
        "return",
        "should",
        "expected",
        "actual",
        "example",
        "error",
        "traceback",
        "most",
        "recent",
        "call",
        "last",
        # Method names every codebase has; searching them finds everything and so nothing.
        "end",
        "get",
        "set",
        "run",
        "add",
        "pop",
        "keys",
        "items",
        "values",
        "append",
        "extend",
        "join",
        "split",
        "strip",
        "read",
        "write",
        "close",
        "update",
        "copy",
        "decode",
        "encode",
        "raw_decode",
    }
)


def _clean(title: str, body: str) -> str:
    return strip_hidden(f"{title}\n\n{body}")[:MAX_ISSUE_CHARS]


def extract_file_refs(text: str) -> list[FileRef]:
    """File references in the order they appear; traceback frames keep their position."""
    refs: list[FileRef] = []
    frames = list(_TRACEBACK_FRAME.finditer(text))
    spans = []
    for i, m in enumerate(frames):
        refs.append(FileRef(m.group(1), int(m.group(2)), m.group(3), "traceback", i, len(frames)))
        spans.append(m.span())
    taken = {m.span(1) for m in frames}
    for m in _FILE_LINE.finditer(text):
        if not any(s <= m.start() < e for s, e in spans):
            refs.append(FileRef(m.group(1), int(m.group(2)), None, "ref"))
            taken.add(m.span(1))
    for m in _FILE_MENTION.finditer(text):
        if not any(s <= m.start() < e for s, e in [*spans, *taken]):
            refs.append(FileRef(m.group(1), None, None, "mention"))
    return refs


def _identifier_parts(token: str) -> list[str]:
    """`pkg.mod.func()` → [func, mod]: the last components are what a definition is named."""
    names = [p for p in token.split(".") if p.isidentifier()]
    return list(reversed(names[-2:]))


def extract_identifiers(text: str, limit: int = 12) -> list[str]:
    """Identifiers worth searching for, most telling first.

    Weights: a name in backticks or in a traceback's `in f` is the reporter pointing at it;
    a `name(` call in prose is nearly as good; names inside code blocks are many and mostly
    incidental. snake_case and CamelCase names are rarer than plain words, so they rank up.
    """
    scores: defaultdict[str, float] = defaultdict(float)
    first_seen: dict[str, int] = {}

    def add(name: str, weight: float) -> None:
        if len(name) < 3 or name.lower() in _NOISE or name in _NOISE or name.isdigit():
            return
        if name.startswith("__") and name.endswith("__"):
            return
        distinct = "_" in name.strip("_") or (name[:1].isupper() and not name.isupper())
        scores[name] += weight * (1.5 if distinct else 1.0)
        first_seen.setdefault(name, len(first_seen))

    for m in _TRACEBACK_FRAME.finditer(text):
        if m.group(3) and not m.group(3).startswith("<"):
            add(m.group(3).split(".")[-1], 3.0)
    for m in _EXCEPTION_LINE.finditer(text):
        add(m.group(1).split(".")[-1], 1.0)
    blocks = [m.group(1) for m in _CODE_BLOCK.finditer(text)]
    prose = _CODE_BLOCK.sub(" ", text)
    for m in _BACKTICKS.finditer(prose):
        for token in _DOTTED.findall(m.group(1)):
            for i, part in enumerate(_identifier_parts(token)):
                add(part, 3.0 if i == 0 else 1.0)
    for m in _CALL.finditer(prose):
        add(m.group(1), 2.0)
    for block in blocks:
        # Traceback frames inside blocks were counted above; their source lines are code.
        for m in _CALL.finditer(block):
            add(m.group(1), 1.0)
        for m in _IMPORT.finditer(block):
            for token in _DOTTED.findall(f"{m.group(1) or ''} {m.group(2)}"):
                for part in _identifier_parts(token)[:1]:
                    add(part, 0.5)
    ranked = sorted(scores, key=lambda n: (-scores[n], first_seen[n]))
    return ranked[:limit]


def map_to_repo(ref_path: str, repo_files: Iterable[str]) -> list[str]:
    """Repository files a reported path denotes, matched by the longest common path suffix.

    Accepted when at least two trailing components agree (`site-packages/pkg/mod.py` →
    `src/pkg/mod.py`) or the whole repository path is a suffix of the reported one
    (`/home/u/proj/app.py` → `app.py`). A lone matching file name is not enough for a deeper
    repository file: `/usr/lib/python3.11/json/decoder.py` must not map to `mypkg/decoder.py`.
    Ties are all returned (the caller splits the score).
    """
    parts = [p for p in ref_path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts[-1:]):
        return []
    best: list[str] = []
    best_len = 0
    for repo_path in repo_files:
        rparts = repo_path.split("/")
        n = 0
        while n < min(len(parts), len(rparts)) and parts[-1 - n] == rparts[-1 - n]:
            n += 1
        if n == 0 or (n < 2 and n < len(rparts)):
            continue
        if n > best_len:
            best, best_len = [repo_path], n
        elif n == best_len:
            best.append(repo_path)
    return sorted(best)


# --- repository map (pure) ------------------------------------------------------------------

_SIG_CHARS = 160


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    sig = f"{prefix} {node.name}({ast.unparse(node.args)})"
    if node.returns is not None:
        sig += f" -> {ast.unparse(node.returns)}"
    return sig if len(sig) <= _SIG_CHARS else f"{sig[: _SIG_CHARS - 1]}…)"


def python_outline(path: str, source: str, *, methods: bool = True) -> str:
    """`path` followed by its top-level classes and functions (with public methods)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return f"{path}  (does not parse)"
    lines = [path]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines.append(f"  {_signature(node)}")
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            lines.append(f"  class {node.name}{f'({bases})' if bases else ''}")
            if methods:
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                        not item.name.startswith("_") or item.name == "__init__"
                    ):
                        lines.append(f"    {_signature(item)}")
    return "\n".join(lines)


def enclosing_definition(source: str, line: int, max_lines: int) -> tuple[int, int] | None:
    """The innermost function/class around `line` if it spans at most `max_lines` lines."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    best: tuple[int, int] | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            end = node.end_lineno or node.lineno
            if start <= line <= end and end - start < max_lines:
                if best is None or end - start < best[1] - best[0]:
                    best = (start, end)
    return best


# --- the pipeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalizeBudget:
    tokens: int = 3000
    #: Share of `tokens` for snippets; the map gets the rest plus whatever snippets leave.
    snippet_share: float = 0.55
    max_candidates: int = 15
    max_snippets: int = 4
    snippet_radius: int = 12
    max_snippet_lines: int = 60
    max_identifiers: int = 12


def _is_test_path(path: str) -> bool:
    name = PurePosixPath(path).name
    return (
        path.startswith(("tests/", "test/"))
        or "/tests/" in path
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def _merge(candidates: Iterable[Candidate]) -> list[Candidate]:
    merged: dict[tuple[str, int | None], Candidate] = {}
    for c in candidates:
        key = (c.path, c.line)
        if key in merged:
            have = merged[key]
            have.score += c.score
            if c.reason not in have.reason:
                have.reason = f"{have.reason}; {c.reason}"
        else:
            merged[key] = Candidate(c.path, c.line, c.reason, c.score)
    return list(merged.values())


def score_file_refs(refs: Sequence[FileRef], repo_files: Sequence[str]) -> list[Candidate]:
    """Candidates from file references: traceback frames near the raise site score highest."""
    out: list[Candidate] = []
    for ref in refs:
        matches = map_to_repo(ref.path, repo_files)
        if not matches:
            continue
        if ref.kind == "traceback" and ref.frame is not None:
            # The innermost frames (last printed) are nearest the failure.
            depth = (ref.frame + 1) / max(ref.frames, 1)
            score = 8.0 + 6.0 * depth
            where = f"traceback frame{f' in {ref.function}' if ref.function else ''}"
        elif ref.kind == "ref":
            score, where = 8.0, "file:line reference"
        else:
            score, where = 4.0, "file named in the issue"
        for path in matches:
            out.append(Candidate(path, ref.line, where, score / len(matches)))
    return out


async def score_identifiers(
    names: Sequence[str], repo: RepoView, *, max_hits: int = 400
) -> list[Candidate]:
    """Candidates from identifier searches: two repository scans in all (definitions, then
    uses), not two per name, so a large repository costs the same as a small one."""
    if not names:
        return []
    alternation = "|".join(re.escape(n) for n in names)
    def_re = re.compile(rf"^\s*(?:async\s+def|def|class)\s+({alternation})\b")
    use_re = re.compile(rf"\b({alternation})\b")
    out: list[Candidate] = []
    try:
        defs = await repo.search(def_re.pattern, max_results=max_hits)
        uses = await repo.search(use_re.pattern, max_results=max_hits)
    except WorkspaceError:
        return []
    def_lines = set()
    for hit in defs:
        m = def_re.match(hit.text)
        if m:
            def_lines.add((hit.path, hit.line))
            weight = 6.0 if not _is_test_path(hit.path) else 2.0
            out.append(Candidate(hit.path, hit.line, f"defines `{m.group(1)}`", weight))
    # A use is worth more the fewer files share it (a name used everywhere locates nothing).
    files_per_name: defaultdict[str, set[str]] = defaultdict(set)
    per_file: defaultdict[tuple[str, str], int] = defaultdict(int)
    for hit in uses:
        if (hit.path, hit.line) in def_lines:
            continue
        for name in set(use_re.findall(hit.text)):
            files_per_name[name].add(hit.path)
            per_file[(hit.path, name)] += 1
    for (path, name), count in per_file.items():
        rarity = 1.0 / math.sqrt(len(files_per_name[name]))
        score = 1.5 * rarity * min(count, 3) / 3 + 0.5 * rarity
        out.append(Candidate(path, None, f"uses `{name}`", score))
    return out


def build_repo_map(outlines: Sequence[str], others: Sequence[str], budget_tokens: int) -> str:
    """Outlines in the given order, then other file paths, stopping before the budget."""
    kept: list[str] = []
    used = 0
    skipped = 0
    for block in outlines:
        cost = estimate_tokens(block + "\n")
        if used + cost > budget_tokens - 15:
            skipped += 1
            continue
        kept.append(block)
        used += cost
    listed = []
    for path in others:
        cost = estimate_tokens(path + "\n")
        if used + cost > budget_tokens - 15:
            skipped += 1
            continue
        listed.append(path)
        used += cost
    if listed:
        kept.append("other files: " + ", ".join(listed))
    if skipped:
        kept.append(f"[… {skipped} more files not shown]")
    return "\n".join(kept)


async def localize(
    title: str,
    body: str,
    repo: RepoView,
    *,
    budget: LocalizeBudget | None = None,
) -> Localization:
    """Candidates, snippets and a repository map for an issue, within `budget.tokens`."""
    b = budget or LocalizeBudget()
    text = _clean(title, body)
    repo_files = await repo.list_files()
    file_set = set(repo_files)

    refs = extract_file_refs(text)
    names = extract_identifiers(text, b.max_identifiers)
    ranked = _merge([*score_file_refs(refs, repo_files), *await score_identifiers(names, repo)])
    ranked = [c for c in ranked if c.path in file_set]
    ranked.sort(key=lambda c: (-c.score, c.path, c.line or 0))
    candidates = ranked[: b.max_candidates]

    # File order for snippets and the map: by the summed score of all a file's candidates.
    file_score: defaultdict[str, float] = defaultdict(float)
    for c in ranked:
        file_score[c.path] += c.score
    top_files = sorted(file_score, key=lambda p: (-file_score[p], p))

    sources: dict[str, str] = {}

    async def source(path: str) -> str | None:
        if path not in sources:
            try:
                sources[path] = await repo.read_file(path)
            except (WorkspaceError, OSError, UnicodeDecodeError):
                return None
        return sources[path]

    snippet_budget = int(b.tokens * b.snippet_share)
    snippets = await _snippets(candidates, source, b, snippet_budget)
    used = sum(estimate_tokens(s.text) + 10 for s in snippets)
    listing = estimate_tokens("\n".join(f"{c.path}:{c.line} {c.reason}" for c in candidates))
    map_budget = max(b.tokens - used - listing, 0)

    ordered = top_files + sorted(
        (p for p in repo_files if p not in file_score),
        # Source before tests: the map is for finding where behaviour lives.
        key=lambda p: (_is_test_path(p), p.count("/"), p),
    )
    outlines: list[str] = []
    spent = 0
    others: list[str] = []
    for path in ordered:
        if not path.endswith(".py"):
            others.append(path)
            continue
        if spent > map_budget:
            # Parsing the rest could only produce blocks the budget drops; count them instead.
            outlines.append(path)
            continue
        src = await source(path)
        block = python_outline(path, src) if src is not None else path
        outlines.append(block)
        spent += estimate_tokens(block)
    repo_map = build_repo_map(outlines, others, map_budget)
    return Localization(candidates, repo_map, snippets, names)


async def _snippets(
    candidates: Sequence[Candidate],
    source: _SourceFn,
    b: LocalizeBudget,
    budget_tokens: int,
) -> list[Snippet]:
    windows: dict[str, list[tuple[int, int]]] = defaultdict(list)
    order: list[str] = []
    for c in candidates:
        if c.line is None:
            continue
        src = await source(c.path)
        if src is None:
            continue
        total = len(src.splitlines())
        if not 1 <= c.line <= total:
            continue
        span = None
        if c.path.endswith(".py"):
            span = enclosing_definition(src, c.line, b.max_snippet_lines)
        if span is None:
            span = (max(c.line - b.snippet_radius, 1), min(c.line + b.snippet_radius, total))
        windows[c.path].append(span)
        if c.path not in order:
            order.append(c.path)
        if sum(len(v) for v in windows.values()) >= b.max_snippets * 2:
            break
    out: list[Snippet] = []
    used = 0
    for path in order:
        lines = (await source(path) or "").splitlines()
        for start, end in _union(windows[path]):
            text = "\n".join(number_lines(lines[start - 1 : end], start))
            cost = estimate_tokens(text) + 10
            if used + cost > budget_tokens or len(out) >= b.max_snippets:
                continue
            out.append(Snippet(path, start, end, text))
            used += cost
    return out


class _SourceFn(Protocol):
    async def __call__(self, path: str) -> str | None: ...


def _union(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
