"""Module sizes and the longest functions, as docs/architecture.md's table shows them.

    python bench/sizes.py              # the 15 largest modules and the 15 longest functions
    python bench/sizes.py --top 30     # more of each
    python bench/sizes.py --all        # every module

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--all", action="store_true", help="every module, not only the largest")
    args = parser.parse_args()
    texts = modules()
    sizes = sorted(((len(t.splitlines()), m) for m, t in texts.items()), reverse=True)
    funcs = sorted(
        (f for m, t in texts.items() for f in functions(m, t)), key=lambda f: (-f.lines, f.name)
    )
    total = sum(n for n, _ in sizes)
    print(f"{len(sizes)} modules, {total:,} lines, {len(funcs)} functions\n")
    print("| module | lines | longest function | its lines |")
    print("|---|---|---|---|")
    for n, m in sizes if args.all else sizes[: args.top]:
        own = [f for f in funcs if f.module == m]
        longest = own[0] if own else None
        name = f"`{longest.name}`" if longest else "—"
        print(f"| `{m}` | {n} | {name} | {longest.lines if longest else '—'} |")
    print("\n| function | module | lines |")
    print("|---|---|---|")
    for f in funcs[: args.top]:
        print(f"| `{f.name}` | `{f.module}` | {f.lines} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
