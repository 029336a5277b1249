"""Module sizes and the longest functions, as docs/architecture.md's table shows them.

    python bench/sizes.py              # the 15 largest modules and the 15 longest functions
    python bench/sizes.py --top 30     # more of each
    python bench/sizes.py --all        # every module
    python bench/sizes.py --write      # the table of docs/architecture.md (10 of each)

Measured with `ast` over bot/, loops/ and handlers/: a module's lines are its physical lines;
a function's are from its `def` (decorators excluded) to its last line, docstring and
comments included; nested functions count inside their parent and on their own.
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "loops", "handlers")


@dataclass(frozen=True)
class Function:
    module: str
    name: str
    lines: int


def modules() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return found


def functions(module: str, text: str) -> list[Function]:
    out = []
    tree = ast.parse(text)

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                end = child.end_lineno or child.lineno
                out.append(Function(module, name, end - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


DOC = ROOT / "docs" / "architecture.md"
START, STOP = "<!-- sizes -->", "<!-- /sizes -->"


def tables(top: int | None) -> str:
    texts = modules()
    sizes = sorted(((len(t.splitlines()), m) for m, t in texts.items()), reverse=True)
    funcs = sorted(
        (f for m, t in texts.items() for f in functions(m, t)), key=lambda f: (-f.lines, f.name)
    )
    total = sum(n for n, _ in sizes)
    out = [f"{len(sizes)} modules, {total:,} lines, {len(funcs)} functions.", ""]
    out += ["| module | lines | longest function | its lines |", "|---|---|---|---|"]
    for n, m in sizes if top is None else sizes[:top]:
        own = [f for f in funcs if f.module == m]
        longest = own[0] if own else None
        name = f"`{longest.name}`" if longest else "—"
        out.append(f"| `{m}` | {n} | {name} | {longest.lines if longest else '—'} |")
    out += ["", "| function | module | lines |", "|---|---|---|"]
    for f in funcs[: top if top is not None else 15]:
        out.append(f"| `{f.name}` | `{f.module}` | {f.lines} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--all", action="store_true", help="every module, not only the largest")
    parser.add_argument("--write", action="store_true", help="rewrite docs/architecture.md's")
    args = parser.parse_args()
    if args.write:
        text = DOC.read_text(encoding="utf-8")
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(STOP)
        if not rest:
            raise SystemExit(f"docs/architecture.md has no {START} block")
        DOC.write_text(f"{head}{START}\n{tables(10)}\n{STOP}{tail}", encoding="utf-8")
        return 0
    print(tables(None if args.all else args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
