"""Terraform / OpenTofu: ``Error: …`` diagnostics (init, validate, plan, apply, test) and
``terraform fmt -check``.

Recognises:

- an error diagnostic, boxed (``│ Error: Reference to undeclared input variable``, the coloured
  default) or plain (``Error: …`` with ``-no-color``), with its location line
  ``  on main.tf line 3, in resource "terraform_data" "x":``: path/line from it, code = the
  summary as a slug (``reference-to-undeclared-input-variable``). A plain ``Error: …`` line is
  taken only with a ``.tf``/``.tftest.hcl`` location in the next lines or a summary only
  Terraform prints (``Failed to query available provider packages``, …), so another tool's
  ``Error:`` is not read as Terraform's;
- ``terraform fmt -check`` listing the files it would reformat, one bare ``main.tf`` /
  ``modules/net/variables.tf`` per line: kind "format", code ``fmt``.

Kinds: in a ``.tftest.hcl`` or ``Test assertion failed``: "test" (test_id = the ``run "…"``
block); provider/module installation and lock file errors: "dependency"; the state lock:
"infrastructure"; any other error with a configuration location: "compile"; the rest (a
provider's API error on apply): "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Category, Failure, clip, rel_path

_ERROR = re.compile(r"^(?:│ )?Error: (.+?)\s*$")
_LOCATION = re.compile(r'^(?:│ )?\s+on (\S+?) line (\d+)(?:, in (\w+)(?: "([^"]*)")?)?')
_FMT_PATH = re.compile(r"^(?:\./)?[\w.\-/]+\.(?:tf|tfvars|tftest\.hcl|tofu)$")
_DEPENDENCY = (
    "Failed to query available provider packages",
    "Failed to install provider",
    "Failed to download module",
    "Module not installed",
    "Inconsistent dependency lock file",
    "Required plugins are not installed",
    "Incompatible provider version",
    "Could not load plugin",
    "Failed to load plugin schemas",
    "Module source has changed",
    "Provider requirements cannot be satisfied by locked dependencies",
)
_INFRA = ("Error acquiring the state lock", "Failed to get existing workspaces")
_KNOWN = (
    _DEPENDENCY
    + _INFRA
    + (
        "Backend initialization required",
        "Unsupported argument",
        "Missing required argument",
        "Test assertion failed",
        "Invalid value for variable",
        "No value for required variable",
    )
)
_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(summary: str) -> str:
    return _SLUG.sub("-", summary.lower()).strip("-")[:60].rstrip("-")


class TerraformParser:
    name = "terraform"
    ecosystem = "infra"
    needles = ("Error: ", ".tf")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        for i in hits:
            text = lines[i]
            m = _ERROR.match(text)
            if m:
                failure = self._error(lines, i, m.group(1), boxed=text.startswith("│"))
                if failure is not None:
                    out.append(failure)
                continue
            if _FMT_PATH.match(text):
                out.append(
                    Failure(
                        kind="format",
                        tool=self.name,
                        message=clip(f"terraform fmt would reformat {text}"),
                        path=rel_path(text),
                        code="fmt",
                        log_line=i,
                    )
                )
        return out

    def _error(self, lines: Sequence[str], i: int, summary: str, *, boxed: bool) -> Failure | None:
        path: str | None = None
        line: int | None = None
        block: str | None = None
        name: str | None = None
        for j in range(i + 1, min(len(lines), i + 8)):
            loc = _LOCATION.match(lines[j])
            if loc:
                path, line = rel_path(loc.group(1)), int(loc.group(2))
                block, name = loc.group(3), loc.group(4)
                break
            if _ERROR.match(lines[j]) or lines[j].startswith("╵"):
                break
        tf_location = path is not None and path.endswith((".tf", ".tftest.hcl", ".tofu", ".tfvars"))
        if not boxed and not tf_location and not summary.startswith(_KNOWN):
            return None
        kind: Category
        test_id: str | None = None
        if summary.startswith("Test assertion failed") or (path or "").endswith(".tftest.hcl"):
            kind = "test"
            test_id = name if block == "run" else None
        elif summary.startswith(_DEPENDENCY):
            kind = "dependency"
        elif summary.startswith(_INFRA):
            kind = "infrastructure"
        elif tf_location:
            kind = "compile"
        else:
            kind = "unknown"
        where = f" ({path} line {line})" if path else ""
        return Failure(
            kind=kind,
            tool=self.name,
            message=clip(f"{summary}{where}"),
            test_id=test_id,
            path=path,
            line=line,
            code=_slug(summary),
            log_line=i,
        )


PARSER = TerraformParser()
