"""Per-tool CI log parsers: one module per tool, discovered at import (see `base`).

`parsers()` returns every parser of the package, ordered by name. A module exports ``PARSER``
or ``PARSERS``; a module whose name starts with an underscore, and `base`, are not parsers.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from bot.logparsers.base import CATEGORIES, Category, Failure, LogParser, scan

__all__ = ["CATEGORIES", "Category", "Failure", "LogParser", "parsers", "scan"]


@functools.cache
def parsers() -> tuple[LogParser, ...]:
    found: list[LogParser] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        one = getattr(module, "PARSER", None)
        several = getattr(module, "PARSERS", ())
        found.extend(([one] if one is not None else []) + list(several))
    names = [p.name for p in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise RuntimeError(f"two log parsers share a name: {', '.join(sorted(dupes))}")
    return tuple(sorted(found, key=lambda p: p.name))
