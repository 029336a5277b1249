"""Deterministic localization: file references, identifiers, repo map; fake and real repos."""

from __future__ import annotations

import fnmatch
import re
import textwrap
from pathlib import Path

from bot.text import estimate_tokens
from bot.workspace import MirrorCache, SearchHit, WorkspaceError, open_workspace
from loops.localize import (
    LocalizeBudget,
    RepoView,
    build_repo_map,
    extract_file_refs,
    extract_identifiers,
    localize,
    map_to_repo,
    python_outline,
)
from tests.support.githttp import commit_files, create_bare_repo, git_server


class FakeRepo:
    """An in-memory RepoView with the Workspace's semantics (fnmatch globs, per-line regex)."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.searches = 0

    async def list_files(self, glob: str | None = None) -> list[str]:
        return sorted(p for p in self.files if glob is None or fnmatch.fnmatchcase(p, glob))

    async def read_file(self, path: str, start: int = 1, end: int | None = None) -> str:
        if path not in self.files:
            raise WorkspaceError(f"{path!r} is not a file")
        lines = self.files[path].splitlines(keepends=True)
        return "".join(lines[max(start, 1) - 1 : end])

    async def search(
        self, pattern: str, max_results: int = 100, glob: str | None = None
    ) -> list[SearchHit]:
        self.searches += 1
        regex = re.compile(pattern)
        hits = []
        for path in await self.list_files(glob):
            for n, line in enumerate(self.files[path].splitlines(), start=1):
                if regex.search(line):
                    hits.append(SearchHit(path, n, line))
                    if len(hits) >= max_results:
                        return hits
        return hits


CORE = textwrap.dedent(
    """\
    import math


    def compute_area(w, h):
        if w < 0:
            raise ValueError("negative")
        return w * h


    class Shape:
        def __init__(self, w: float, h: float) -> None:
            self.w, self.h = w, h

        def area(self) -> float:
            return compute_area(self.w, self.h)
    """
)
CLI = textwrap.dedent(
    """\
    from widget.core import compute_area


    def main(argv=None):
        args = argv or []
        value = compute_area(int(args[0]), int(args[1]))
        print(value)
        return 0
    """
)
FILES = {
    "src/widget/__init__.py": "",
    "src/widget/core.py": CORE,
    "src/widget/cli.py": CLI,
    "src/widget/decoder.py": "def parse(text):\n    return text\n",
    "tests/test_core.py": "from widget.core import compute_area\n\n\ndef test_area():\n"
    "    assert compute_area(2, 3) == 6\n",
    "README.md": "# widget\n",
}

TRACEBACK_ISSUE = textwrap.dedent(
    """\
    Running `widgetctl 2 -3` crashes:

    ```
    Traceback (most recent call last):
      File "/home/alice/venv/bin/widgetctl", line 8, in <module>
        sys.exit(main())
      File "/home/alice/venv/lib/python3.11/site-packages/widget/cli.py", line 6, in main
        value = compute_area(int(args[0]), int(args[1]))
      File "/home/alice/venv/lib/python3.11/site-packages/widget/core.py", line 6, in compute_area
        raise ValueError("negative")
      File "/usr/lib/python3.11/json/decoder.py", line 337, in decode
        obj, end = self.raw_decode(s, idx=_w(s, 0).end())
    ValueError: negative
    ```
    <!-- File "src/widget/__init__.py", line 1, in hidden -->
    """
)


def test_file_refs_map_by_suffix_and_drop_files_outside_the_repo() -> None:
    files = list(FILES)
    refs = extract_file_refs(TRACEBACK_ISSUE)
    assert [r.kind for r in refs] == ["traceback"] * 5  # hidden frame included: not yet stripped
    mapped = {r.path: map_to_repo(r.path, files) for r in refs}
    assert mapped["/home/alice/venv/lib/python3.11/site-packages/widget/core.py"] == [
        "src/widget/core.py"
    ]
    assert mapped["/home/alice/venv/bin/widgetctl"] == []
    # Only the file name agrees: a stdlib file must not land on the repo's decoder.py.
    assert mapped["/usr/lib/python3.11/json/decoder.py"] == []
    assert map_to_repo("C:\\work\\widget\\src\\widget\\cli.py", files) == ["src/widget/cli.py"]
    assert map_to_repo("README.md", files) == ["README.md"]
    assert map_to_repo("/home/bob/proj/README.md", files) == ["README.md"]

    refs = extract_file_refs("See src/widget/cli.py:6 and core.py:4:1, also widget/core.py.")
    assert [(r.path, r.line, r.kind) for r in refs] == [
        ("src/widget/cli.py", 6, "ref"),
        ("core.py", 4, "ref"),
        ("widget/core.py", None, "mention"),
    ]


def test_identifiers_from_backticks_calls_and_tracebacks_without_noise() -> None:
    text = (
        "Calling `Shape.area()` with negatives; `len` is fine. Also `print(x)`.\n"
        'File "/x/core.py", line 6, in compute_area\n'
        "I think the_helper() is wrong.\n"
        "```python\nfrom widget.core import compute_area\nresult = print(format_it(1))\n```\n"
    )
    names = extract_identifiers(text)
    assert names[:2] == ["compute_area", "area"] or names[:2] == ["area", "compute_area"]
    assert {"Shape", "the_helper", "format_it"} <= set(names)
    assert not {"len", "print", "self", "import"} & set(names)
    assert names.index("the_helper") < names.index("format_it")


async def test_traceback_candidates_ordered_innermost_first_hidden_text_ignored() -> None:
    repo = FakeRepo(FILES)
    loc = await localize("widgetctl crashes on negative height", TRACEBACK_ISSUE, repo)
    top = loc.candidates[0]
    assert (top.path, top.line) == ("src/widget/core.py", 6)
    assert "traceback frame in compute_area" in top.reason
    lines = [(c.path, c.line) for c in loc.candidates]
    assert lines.index(("src/widget/core.py", 6)) < lines.index(("src/widget/cli.py", 6))
    assert all(c.path in FILES for c in loc.candidates)
    assert "src/widget/__init__.py" not in loc.files()  # only named in a hidden comment
    # The snippet is the whole function around the raise, numbered.
    snip = loc.snippets[0]
    assert (snip.path, snip.start, snip.end) == ("src/widget/core.py", 4, 7)
    assert snip.text.splitlines()[0] == "4| def compute_area(w, h):"
    # The map starts with the candidate files, then the rest.
    assert loc.repo_map.startswith("src/widget/core.py\n  def compute_area(w, h)\n")
    assert "  class Shape\n    def __init__(self, w: float, h: float) -> None" in loc.repo_map
    assert repo.searches == 2  # one scan for definitions, one for uses, whatever the names
    rendered = loc.render()
    assert "<<<UNTRUSTED-FILE" in rendered and "<<<UNTRUSTED-REPO-MAP" in rendered


async def test_definitions_rank_above_uses() -> None:
    repo = FakeRepo(FILES)
    loc = await localize("`compute_area` returns wrong values", "", repo)
    assert loc.identifiers == ["compute_area"]
    top = loc.candidates[0]
    assert (top.path, top.line, top.reason) == ("src/widget/core.py", 4, "defines `compute_area`")
    uses = [c for c in loc.candidates if c.reason.startswith("uses")]
    assert uses and all(u.score < top.score for u in uses)
    # A definition in a test file counts for less than one in the source.
    assert loc.files()[0] == "src/widget/core.py"


def test_repo_map_respects_its_budget() -> None:
    outlines = [python_outline(f"pkg/m{i}.py", f"def f{i}(a, b):\n    pass\n") for i in range(200)]
    text = build_repo_map(outlines, ["README.md", "setup.cfg"], 300)
    assert estimate_tokens(text) <= 300
    assert text.startswith("pkg/m0.py\n  def f0(a, b)\n")
    assert re.search(r"\[… \d+ more files not shown\]$", text)
    assert python_outline("bad.py", "def (:\n") == "bad.py  (does not parse)"


async def test_whole_localization_stays_within_budget() -> None:
    files = dict(FILES)
    for i in range(300):
        files[f"src/widget/gen/mod{i}.py"] = "\n".join(
            f"def function_{i}_{j}(alpha, beta, gamma=None):\n    return alpha" for j in range(8)
        )
    budget = LocalizeBudget(tokens=1200)
    loc = await localize("crash", TRACEBACK_ISSUE, FakeRepo(files), budget=budget)
    assert estimate_tokens(loc.render()) <= 1200 + 100  # the render adds fences and headings
    assert "more files not shown" in loc.repo_map
    assert loc.repo_map.startswith("src/widget/core.py")


async def test_localize_over_a_real_workspace(tmp_path: Path) -> None:
    repos = tmp_path / "server"
    bare = create_bare_repo(repos, "acme/widget")
    commit_files(bare, dict(FILES), "initial")
    token = "ghs_localizeTestToken0123456789abc"
    async with git_server(repos, {token: True}) as base_url:
        mirrors = MirrorCache(tmp_path / "data", git_base_url=base_url)
        await mirrors.fetch("acme/widget", token)
        async with open_workspace(mirrors, "acme/widget", "main", loop="fix", number=1) as ws:
            view: RepoView = ws
            loc = await localize("Crash in compute_area()", TRACEBACK_ISSUE, view)
    assert (loc.candidates[0].path, loc.candidates[0].line) == ("src/widget/core.py", 6)
    assert loc.snippets and loc.snippets[0].path == "src/widget/core.py"
    assert "src/widget/cli.py\n  def main(argv=None)" in loc.repo_map
