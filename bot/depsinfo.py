"""What a dependency-update pull request from Dependabot or Renovate changes, read from its title,
branch and body; and the release notes it quotes, as plain text for a model (UNTRUSTED data).

Pure parsing: no I/O, and no exception escapes on odd input.

Formats read (as the bots write them; see tests/fixtures/deps/ for whole bodies):

* Dependabot titles, after any commit-message prefix (``build(deps): ``, ``chore(deps-dev): ``,
  ``Upgrade: ``, ``⬆️ ``, ``[Security] ``/``[security] ``/``🔒 ``):
  ``Bump NAME from OLD to NEW[ in /DIR]``, ``Bump NAME to NEW``,
  ``Update NAME requirement from OLD to NEW`` (libraries),
  ``Bump A, B and C[ in /DIR]`` (updated together),
  ``Bump NAME from OLD to NEW[ in /DIR] in the GROUP group[ across N directory]``,
  ``Bump the GROUP group[ in /DIR] with N updates``,
  ``Bump the GROUP group across N directories with N updates``, and the shortened commit
  subject ``Bump NAME[ in /DIR][ in the GROUP group …]``.
* Dependabot bodies: ``Bumps [NAME](URL) from OLD to NEW.``, ``Bumps the GROUP group[ in /DIR]
  with N updates: [a](…), [b](…) and [c](…).``, per directory ``Bumps the GROUP group with N
  updates in the /DIR directory: …`` (all intros first, then the updates in the same order),
  the ``| Package | From | To |`` table groups of five or more get, ``Updates `NAME` from OLD to
  NEW`` lines, ``**This update includes a security fix.**``, ``<summary>Vulnerabilities
  fixed</summary>``, the compatibility-score badge (its ``package-manager=`` names the
  ecosystem).
* Dependabot branches ``dependabot/ECOSYSTEM[/DIR…]/NAME-NEW`` (npm scopes lose their ``@``),
  ``dependabot/ECOSYSTEM[/DIR…]/GROUP-<10 hex digits>`` for groups, ``…/multi-<digest>``.
* Renovate titles, after a prefix (``chore(deps): ``, ``fix(deps): ``, ``:arrow_up: ``) and before a
  suffix (``[SECURITY]``, ``- autoclosed``): ``Update dependency NAME to vNEW``, ``Update NAME to
  NEW``, ``Update NAME action to v4``, ``Update module NAME …``, ``Update rust crate NAME …``,
  ``Update NAME Docker tag …``, ``Update NAME digest to abc1234``, ``Update all non-major
  dependencies``, ``Update NAME monorepo to v5``, ``Lock file maintenance``.
* Renovate bodies: the ``| Package | … | Change | … |`` table (cells ```OLD` -> `NEW``` or
  ```OLD` → `NEW``, optionally a link), ``### GitHub Vulnerability Alerts`` and
  ``### Release Notes`` sections. Branches ``renovate/NAME-2.x``, ``renovate/all-minor-patch``.

Decisions:

* ``update_type``: the first differing release number decides (major.minor.patch, a fourth
  number is a patch). 0.x follows Cargo's reading of SemVer, which npm's caret ranges share: the
  first non-zero number is the major and the next one the minor, so 0.3.1 -> 0.4.0 is "major",
  0.3.1 -> 0.3.2 is "minor" and 0.0.3 -> 0.0.4 is "major". Range operators (``^``, ``~``,
  ``==``, ``>=``, ``~>``) are read through; a compound range (``>=2,<4``) is "other".
  "other" also covers: no old version, git SHAs, date versions (first number a year, or a
  yyyymmdd date: not semver), unparseable strings, and changes of the pre-release tag or
  variant only (2.0.0rc1 -> 2.0.0, 3.12-slim -> 3.12-alpine). A change of post-release or
  build metadata only (1.2.3 -> 1.2.3.post1) is "patch". A downgrade is classified like an
  upgrade of the same size.
* ``DepsPR.worst`` ranks major > other > minor > patch: an update we cannot classify is treated
  as almost as risky as a major one, never as a harmless patch. With no updates at all (a
  grouped title whose body we could not read) it is "other".
* ``security`` comes from the bots' own words only (title markers, Dependabot's security
  sentence and "Vulnerabilities fixed" block, Renovate's "Vulnerability Alerts" section, an
  advisory id outside the quoted notes), never from the quoted release notes or commits,
  which upstream authors write.
* Only authors whose login ends in ``[bot]`` are read; a human's PR is never a dependency bump.
  ``bot`` is "dependabot"/"renovate" only for the official apps (``dependabot[bot]``,
  ``dependabot-preview[bot]``, ``renovate[bot]``): a look-alike app keeps its own login, so it
  cannot borrow their name. A self-hosted Renovate app (login containing "renovate") is read in
  Renovate's format. Any other bot counts only when the title has a strict form (both versions,
  or Renovate's ``dependency NAME``), or its branch is a Dependabot/Renovate one.
* A branch alone is ambiguous (``dependabot/npm_and_yarn/web/lodash-4.17.21`` could be
  ``@web/lodash`` or ``lodash`` in ``/web``); the title wins when it parses. For ecosystems
  whose names contain slashes (npm scopes, actions, Go modules, Docker images, Composer, …) the
  branch path is read as the name (npm: the last two parts as ``@scope/name``, anything before
  as the directory); for the others the path before the name is the directory.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from bot.text import strip_hidden

UpdateType = Literal["major", "minor", "patch", "other"]

#: major > other > minor > patch: unknown is treated as nearly major-risk.
_RISK: dict[UpdateType, int] = {"patch": 0, "minor": 1, "other": 2, "major": 3}

#: GitHub caps PR bodies at 65,536 characters; anything past this is not read.
_MAX_BODY = 100_000
_MAX_LINE = 1_000
_MAX_VERSION = 100


@dataclass(frozen=True)
class DepUpdate:
    package: str
    old: str | None
    new: str
    update_type: UpdateType
    ecosystem: str | None
    directory: str | None


@dataclass(frozen=True)
class DepsPR:
    bot: str
    updates: list[DepUpdate]
    group: str | None
    security: bool

    @property
    def worst(self) -> UpdateType:
        """The riskiest update: major > other > minor > patch ("other" when there are none)."""
        if not self.updates:
            return "other"
        return max((u.update_type for u in self.updates), key=_RISK.__getitem__)


# --- versions -----------------------------------------------------------------------------------

_OPERATOR = re.compile(r"^(?:===|==|~=|>=|<=|!=|~>|\^|~|=|>|<)\s*")
_WILDCARD_TAIL = re.compile(r"(?:\.[xX*])+$")
_VERSION = re.compile(r"^[vV]?(?:(\d{1,9})!)?(\d{1,30}(?!\d)(?:\.\d{1,30}(?!\d)){0,15})(.*)$")
_GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_PRE_TAG = re.compile(
    r"^[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev|snapshot|canary|next|nightly|insiders|m)"
    r"(?![a-z])",
    re.IGNORECASE,
)
_POST_TAG = re.compile(
    r"^(?:[-_.]?(?:post|rev|r)[-_.]?\d*(?:\+[0-9A-Za-z.+-]*)?|\+[0-9A-Za-z.+-]*)$"
)


@dataclass(frozen=True)
class _Version:
    epoch: int
    release: tuple[int, ...]
    rest: str


def _clean_version(raw: str) -> str:
    return raw.strip().strip("`'\"").strip().rstrip(".,;:").strip("`")


def _parse_version(raw: str) -> _Version | None:
    text = _clean_version(raw)
    if len(text) > _MAX_VERSION:
        return None
    text = _WILDCARD_TAIL.sub("", _OPERATOR.sub("", text))
    if not text or re.search(r"[,\s|]", text):
        return None
    if _GIT_SHA.match(text) and re.search(r"[a-f]", text):
        return None
    m = _VERSION.match(text)
    if m is None:
        return None
    release = tuple(int(part) for part in m.group(2).split("."))
    return _Version(int(m.group(1) or 0), release, m.group(3))


def _is_date_version(v: _Version) -> bool:
    first = v.release[0]
    return 1990 <= first <= 2999 or 19_900_101 <= first <= 29_991_231


def _level(old: tuple[int, ...], new: tuple[int, ...]) -> UpdateType:
    n = max(len(old), len(new), 3)
    a = old + (0,) * (n - len(old))
    b = new + (0,) * (n - len(new))
    diff = next(i for i in range(n) if a[i] != b[i])
    # 0.x: the first non-zero number acts as the major (Cargo; npm's ^0.y.z agrees).
    lead = next((i for i in range(2) if a[i] != 0), 2)
    if diff <= lead:
        return "major"
    if diff == lead + 1:
        return "minor"
    return "patch"


def update_type(old: str | None, new: str) -> UpdateType:
    """How big the step from ``old`` to ``new`` is; see the module docstring for the rules."""
    if old is None:
        return "other"
    a, b = _parse_version(old), _parse_version(new)
    if a is None or b is None:
        return "other"
    if a.epoch != b.epoch:
        return "major"
    if _is_date_version(a) or _is_date_version(b):
        return "other"
    n = max(len(a.release), len(b.release))
    if a.release + (0,) * (n - len(a.release)) != b.release + (0,) * (n - len(b.release)):
        return _level(a.release, b.release)
    if a.rest == b.rest:
        return "other"
    pre = bool(_PRE_TAG.match(a.rest) or _PRE_TAG.match(b.rest))
    post_only = all(r == "" or _POST_TAG.match(r) for r in (a.rest, b.rest))
    return "patch" if post_only and not pre else "other"


# --- shared text helpers ------------------------------------------------------------------------

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]"
)
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*\)")


def _line(text: str) -> str:
    """A title or branch, bounded and with invisible characters and line breaks removed."""
    return " ".join(_INVISIBLE.sub("", text[:_MAX_LINE]).split())


def _dir(raw: str | None) -> str | None:
    if not raw:
        return None
    d = "/" + raw.strip().strip("/")
    return None if d == "/" else d


def _split_names(text: str) -> list[str]:
    """``a, b and c`` -> [a, b, c] (markdown links read as their text)."""
    text = _MD_LINK.sub(r"\1", text).strip().rstrip(".")
    parts = re.split(r",\s*|\s+and\s+", text)
    return [p.strip().strip("`") for p in parts if p.strip().strip("`")]


def _dedupe(updates: list[DepUpdate]) -> list[DepUpdate]:
    seen: set[tuple[str, str | None, str, str | None]] = set()
    out: list[DepUpdate] = []
    for u in updates:
        key = (u.package, u.old, u.new, u.directory)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out


# --- titles -------------------------------------------------------------------------------------

_PREFIXES = (
    re.compile(r"^(?:⬆️|⬆|:arrow_up:)\s*"),
    re.compile(r"^(?:🔒|:lock:)\s*"),
    re.compile(r"^\[[^\]]{1,40}\]\s*"),
    re.compile(r"^[A-Za-z][\w-]{0,30}(?:\([^)]{0,40}\))?!?:\s+"),
)
_SUFFIXES = (
    re.compile(r"\s*\[[^\]]{1,40}\]$"),
    re.compile(r"\s+-\s+(?:autoclosed|abandoned)$", re.IGNORECASE),
    re.compile(r"\s+\(#\d+\)$"),
)
_SECURITY_WORD = re.compile(r"\[security\]|🔒|:lock:", re.IGNORECASE)


def _strip_affixes(title: str) -> tuple[str, bool]:
    """The title without commit-message prefixes and suffixes, and whether they said security."""
    security = False
    for _ in range(8):
        for pattern in _PREFIXES:
            m = pattern.match(title)
            if m:
                security = security or bool(_SECURITY_WORD.search(m.group(0)))
                title = title[m.end() :]
                break
        else:
            break
    for _ in range(8):
        for pattern in _SUFFIXES:
            m = pattern.search(title)
            if m:
                security = security or bool(_SECURITY_WORD.search(m.group(0)))
                title = title[: m.start()]
                break
        else:
            break
    return title.strip(), security


_ACROSS = r"(?P<across> across (?:\d+ director(?:y|ies)|multiple ecosystems))?"
_DB_GROUP_TITLE = re.compile(
    r"^bump the (?P<group>\S+) group(?: in (?P<dir>/\S*))?"
    r"(?P<across> across \d+ director(?:y|ies))? with \d+ updates?"
    r"(?: across multiple ecosystems)?$",
    re.IGNORECASE,
)
_DB_SINGLE_TITLE = re.compile(
    r"^(?:bump|update|upgrade) (?P<name>\S+)(?: requirement)?"
    r"(?: from (?P<old>.+?))? to (?P<new>.+?)"
    r"(?: in (?P<dir>/\S*))?(?: in the (?P<group>\S+) group" + _ACROSS + r")?$",
    re.IGNORECASE,
)
_DB_NAME_ONLY_TITLE = re.compile(
    r"^bump (?P<name>[^\s,]+)(?: in (?P<dir>/\S*))?(?: in the (?P<group>\S+) group"
    + _ACROSS
    + r")?$",
    re.IGNORECASE,
)
_DB_MULTI_TITLE = re.compile(
    r"^(?:bump|update requirements for) (?P<names>[^\s,]+(?:, [^\s,]+)* and [^\s,]+)"
    r"(?: in (?P<dir>/\S*))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _DbTitle:
    kind: Literal["single", "name", "multi", "group"]
    names: tuple[str, ...]
    old: str | None
    new: str | None
    directory: str | None
    group: str | None
    across: bool


def _dependabot_title(core: str) -> _DbTitle | None:
    m = _DB_GROUP_TITLE.match(core)
    if m:
        return _DbTitle("group", (), None, None, _dir(m["dir"]), m["group"], bool(m["across"]))
    m = _DB_SINGLE_TITLE.match(core)
    if m and m["new"].strip():
        old = _clean_version(m["old"]) if m["old"] else None
        return _DbTitle(
            "single",
            (m["name"],),
            old or None,
            _clean_version(m["new"]),
            _dir(m["dir"]),
            m["group"],
            bool(m["across"]),
        )
    m = _DB_MULTI_TITLE.match(core)
    if m:
        return _DbTitle(
            "multi", tuple(_split_names(m["names"])), None, None, _dir(m["dir"]), None, False
        )
    m = _DB_NAME_ONLY_TITLE.match(core)
    if m and m["name"].lower() not in {"the", "version", "versions", "dependencies", "deps"}:
        return _DbTitle(
            "name", (m["name"],), None, None, _dir(m["dir"]), m["group"], bool(m["across"])
        )
    return None


_RENOVATE_TITLE = re.compile(
    r"^(?:update|pin|bump|upgrade|replace|roll back|rollback) (?P<topic>.+?)"
    r"(?: to (?P<new>\S+))?$",
    re.IGNORECASE,
)
_RENOVATE_TOPICS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"^dependency (?P<name>\S+)$", re.IGNORECASE), None),
    (re.compile(r"^(?P<name>\S+) action$", re.IGNORECASE), "github_actions"),
    (re.compile(r"^(?P<name>\S+) docker (?:tag|digest)$", re.IGNORECASE), "docker"),
    (re.compile(r"^module (?P<name>\S+)$", re.IGNORECASE), "go_modules"),
    (re.compile(r"^rust crate (?P<name>\S+)$", re.IGNORECASE), "cargo"),
    (re.compile(r"^(?P<name>\S+) digest$", re.IGNORECASE), None),
    (
        re.compile(r"^(?:pre-commit hook|helm release|terraform) (?P<name>\S+)$", re.IGNORECASE),
        None,
    ),
    (re.compile(r"^(?P<name>\S+) orb$", re.IGNORECASE), None),
)
_RENOVATE_GROUP_TOPIC = re.compile(
    r"(?:^all\b|\b(?:monorepo|packages|dependencies|deps|updates|group)$)", re.IGNORECASE
)


@dataclass(frozen=True)
class _RnTitle:
    name: str | None  # one package, or None for a group
    new: str | None
    group: str | None
    ecosystem: str | None
    strict: bool  # "dependency NAME"-style: unmistakably a dependency update


def _renovate_title(core: str) -> _RnTitle | None:
    if re.match(r"^lock ?file maintenance$", core, re.IGNORECASE):
        return _RnTitle(None, None, "lock file maintenance", None, True)
    m = _RENOVATE_TITLE.match(core)
    if m is None:
        return None
    topic, new = m["topic"].strip(), m["new"]
    new = _clean_version(new) if new else None
    for pattern, ecosystem in _RENOVATE_TOPICS:
        t = pattern.match(topic)
        if t:
            return _RnTitle(t["name"], new, None, ecosystem, True)
    if _RENOVATE_GROUP_TOPIC.search(topic) or topic.lower() == "dependencies":
        return _RnTitle(None, new, topic, None, True)
    if " " not in topic and new is not None:
        return _RnTitle(topic, new, None, None, False)
    return None


# --- branches -----------------------------------------------------------------------------------

#: Dependabot ecosystems whose dependency names may contain "/".
_SLASHY = frozenset(
    {
        "npm_and_yarn",
        "bun",
        "github_actions",
        "go_modules",
        "docker",
        "docker_compose",
        "composer",
        "terraform",
        "opentofu",
        "swift",
        "gitsubmodule",
        "helm",
        "devcontainers",
        "vcpkg",
    }
)
_BRANCH_VERSION = re.compile(
    r"^(?:v?\d+(?:\.\d+)*(?:[-+._][0-9A-Za-z][0-9A-Za-z.+_-]*)?|[0-9a-f]{7,40})$"
)
_GROUP_DIGEST = re.compile(r"^(?P<group>.+)-(?P<digest>[0-9a-f]{10})$")


@dataclass(frozen=True)
class _DbBranch:
    ecosystem: str
    name: str | None
    new: str | None
    directory: str | None
    group: str | None


def _split_name_version(segment: str) -> tuple[str, str] | None:
    for m in re.finditer("-", segment):
        name, version = segment[: m.start()], segment[m.end() :]
        if name and _BRANCH_VERSION.match(version):
            return name, version
    return None


def _dependabot_branch(branch: str) -> _DbBranch | None:
    parts = [p for p in branch.split("/") if p]
    if len(parts) < 3 or parts[0] != "dependabot" or not re.fullmatch(r"[a-z0-9_]+", parts[1]):
        return None
    ecosystem, path, last = parts[1], parts[2:-1], parts[-1]
    g = _GROUP_DIGEST.match(last)
    if g and not g["digest"].isdigit():
        group = None if g["group"] == "multi" else g["group"]
        return _DbBranch(ecosystem, None, None, _dir("/".join(path)), group)
    split = _split_name_version(last)
    if split is None:
        return _DbBranch(ecosystem, None, None, None, None)
    name, version = split
    directory: str | None = None
    if ecosystem in ("npm_and_yarn", "bun") and path:
        name = f"@{path[-1]}/{name}"
        directory = _dir("/".join(path[:-1]))
    elif ecosystem in _SLASHY:
        name = "/".join([*path, name])
    else:
        directory = _dir("/".join(path))
    return _DbBranch(ecosystem, name, version, directory, None)


_RENOVATE_BRANCH = re.compile(r"^renovate/(?P<topic>[^\s]+)$")
_RENOVATE_BRANCH_PKG = re.compile(r"^(?P<name>.+?)-(?P<major>v?\d+(?:\.\d+)?)\.x(?:-lockfile)?$")


# --- bodies -------------------------------------------------------------------------------------

_DB_INTRO = re.compile(
    r"^Bumps\s+(?:\[(?P<lname>[^\]\n]+)\]\([^)\s]*\)|(?P<pname>[^\s\[]+))"
    r"(?:\s+from\s+(?P<old>\S+))?\s+to\s+(?P<new>\S+?)\.?(?=\s|$)",
    re.MULTILINE,
)
_DB_UPDATES = re.compile(
    r"^Updates\s+`(?P<name>[^`\n]+)`(?:\s+from\s+(?P<old>\S+))?\s+to\s+(?P<new>\S+?)\.?(?=\s|$)",
    re.MULTILINE,
)
_DB_GROUP_INTRO = re.compile(
    r"^Bumps the (?P<group>\S+) group(?: in (?P<dir1>/\S*))? with \d+ updates?"
    r"(?: in the (?P<dir2>/\S*) directory)?:(?P<list>[^\n]*(?:\n[ \t]+[^\n]*)*)",
    re.MULTILINE,
)
# Groups of five or more list their updates in a table right after the intro.
_DB_FROM_TO_TABLE = re.compile(
    r"[ \t]*\n(?:[ \t]*\n){0,3}"
    r"[ \t]*\|[ \t]*Package[ \t]*\|[ \t]*From[ \t]*\|[ \t]*To[ \t]*\|?[ \t]*\n"
    r"[ \t]*\|[ \t:|-]*\n(?P<rows>(?:[ \t]*\|[^\n]*(?:\n|$))*)",
    re.IGNORECASE,
)
_DB_BADGE = re.compile(
    r"compatibility_score\?dependency-name=(?P<name>[^&\s)]+)&package-manager=(?P<pm>[^&\s)]+)"
    r"&previous-version=(?P<old>[^&\s)]*)&new-version=(?P<new>[^&\s)]+)"
)


def _from_to_rows(body: str, pos: int) -> list[tuple[str, str | None, str]]:
    m = _DB_FROM_TO_TABLE.match(body, pos)
    if m is None:
        return []
    rows: list[tuple[str, str | None, str]] = []
    for line in m["rows"].splitlines():
        cells = _cells(line)
        if len(cells) < 3:
            continue
        name = _MD_LINK.sub(r"\1", cells[0]).strip().strip("`")
        old, new = _clean_version(cells[1]), _clean_version(cells[2])
        if name and new:
            rows.append((name, old or None, new))
    return rows


def _dependabot_body_updates(
    body: str, ecosystem: str | None
) -> tuple[list[DepUpdate], str | None]:
    """The ``Updates `x` from a to b`` lines, each with the directory its group intro names.

    A group across directories lists every directory's intro first, then the ``Updates`` lines
    in the same order: the k-th line for a package belongs to the k-th intro that names it.
    """
    directories: dict[str, list[str | None]] = {}
    table: list[DepUpdate] = []
    group: str | None = None
    for intro in _DB_GROUP_INTRO.finditer(body):
        group = group or intro["group"]
        directory = _dir(intro["dir1"] or intro["dir2"])
        rows = _from_to_rows(body, intro.end())
        for name in [r[0] for r in rows] or _split_names(intro["list"]):
            directories.setdefault(name, []).append(directory)
        table += [DepUpdate(n, o, v, update_type(o, v), ecosystem, directory) for n, o, v in rows]
    updates: list[DepUpdate] = []
    for m in _DB_UPDATES.finditer(body):
        name = m["name"].strip()
        queue = directories.get(name)
        directory = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        old = _clean_version(m["old"]) if m["old"] else None
        new = _clean_version(m["new"])
        if new:
            updates.append(DepUpdate(name, old, new, update_type(old, new), ecosystem, directory))
    seen = {(u.package, u.old, u.new) for u in updates}
    updates += [u for u in table if (u.package, u.old, u.new) not in seen]
    return updates, group


# Renovate's "Change" column and the datasource its badges and diff links name.
_ARROW = re.compile(r"\s*(?:->|→)\s*")
_DATASOURCE = re.compile(
    r"(?:/badges/(?:age|adoption|compatibility|confidence)/|renovatebot\.com/diffs/|"
    r"badges\.renovateapi\.com/packages/)(?P<ds>[a-z-]+)/"
)
_DATASOURCE_ECOSYSTEM = {
    "npm": "npm_and_yarn",
    "pypi": "pip",
    "go": "go_modules",
    "crate": "cargo",
    "rubygems": "bundler",
    "packagist": "composer",
    "maven": "maven",
    "nuget": "nuget",
    "docker": "docker",
    "hex": "hex",
    "dart": "pub",
    "terraform-provider": "terraform",
    "terraform-module": "terraform",
    "helm": "helm",
    "github-actions": "github_actions",
}
_UPDATE_COLUMN: dict[str, UpdateType] = {"major": "major", "minor": "minor", "patch": "patch"}


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def _renovate_table(body: str, ecosystem_hint: str | None) -> list[DepUpdate]:
    lines = body.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        header = [_MD_LINK.sub(r"\1", c).strip().lower() for c in _cells(line)]
        if "package" not in header or "change" not in header:
            continue
        col_pkg, col_change = header.index("package"), header.index("change")
        col_update = header.index("update") if "update" in header else None
        updates: list[DepUpdate] = []
        for row in lines[i + 2 :]:
            if not row.lstrip().startswith("|"):
                break
            cells = _cells(row)
            if len(cells) <= max(col_pkg, col_change):
                continue
            update = _renovate_row(cells, col_pkg, col_change, col_update, row, ecosystem_hint)
            if update is not None:
                updates.append(update)
        return updates
    return []


def _renovate_row(
    cells: list[str],
    col_pkg: int,
    col_change: int,
    col_update: int | None,
    row: str,
    ecosystem_hint: str | None,
) -> DepUpdate | None:
    package = _MD_LINK.sub(r"\1", cells[col_pkg])
    package = re.split(r"\s+\(|\s+→\s+|\s+->\s+", package, maxsplit=1)[0].strip().strip("`")
    change = _MD_LINK.sub(r"\1", cells[col_change]).strip()
    if not package or " " in package or ("`" not in change and not _ARROW.search(change)):
        return None
    sides = _ARROW.split(change, maxsplit=1)
    old = _clean_version(sides[0]) if len(sides) == 2 else None
    new = _clean_version(sides[-1])
    if not new or " " in new:
        return None
    kind = update_type(old or None, new)
    if kind == "other" and col_update is not None and col_update < len(cells):
        kind = _UPDATE_COLUMN.get(cells[col_update].strip().lower(), "other")
    ds = _DATASOURCE.search(row)
    ecosystem = _DATASOURCE_ECOSYSTEM.get(ds["ds"]) if ds else None
    return DepUpdate(package, old or None, new, kind, ecosystem or ecosystem_hint, None)


# --- what the bot said itself (security) ---------------------------------------------------------

_DETAILS_TAG = re.compile(r"<(/?)details\b[^>]*>", re.IGNORECASE)
_BLOCKQUOTE_TAG = re.compile(r"<(/?)blockquote\b[^>]*>", re.IGNORECASE)
_VULN_SUMMARY = re.compile(r"\s*<summary>\s*Vulnerabilities fixed\s*</summary>", re.IGNORECASE)
_RENOVATE_NOTES = re.compile(r"^#{2,4}[ \t]*Release Notes[ \t]*$", re.MULTILINE | re.IGNORECASE)
_SECURITY_TEXT = (
    re.compile(r"\*\*This update includes (?:a )?security fix(?:es)?", re.IGNORECASE),
    re.compile(r"<summary>\s*Vulnerabilities fixed\s*</summary>", re.IGNORECASE),
    re.compile(r"^#{2,4}[ \t]*(?:GitHub |OSV )?Vulnerability Alerts", re.MULTILINE | re.IGNORECASE),
    re.compile(r"\bCVE-\d{4}-\d{4,}\b"),
    re.compile(r"\bGHSA(?:-[2-9cfghjmpqrvwx]{4}){3}\b", re.IGNORECASE),
)


def _drop_blocks(text: str, tag: re.Pattern[str], *, keep_vulns: bool = False) -> str:
    """Remove tag blocks with their content, nesting-aware; an unclosed one runs to the end."""
    out: list[str] = []
    depth, pos = 0, 0
    for m in tag.finditer(text):
        if m.group(1) != "/":
            if depth == 0:
                if keep_vulns and _VULN_SUMMARY.match(text, m.end()):
                    continue
                out.append(text[pos : m.start()])
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                pos = m.end()
    if depth == 0:
        out.append(text[pos:])
    return "".join(out)


def _bot_text(body: str) -> str:
    """The body without what the bots quote from upstream (notes, changelogs, commits)."""
    text = _HTML_COMMENT.sub("", body)
    notes = _RENOVATE_NOTES.search(text)
    if notes:
        end = _boilerplate_start(text, notes.end())
        text = text[: notes.start()] + text[end:]
    text = _drop_blocks(text, _DETAILS_TAG, keep_vulns=True)
    return _drop_blocks(text, _BLOCKQUOTE_TAG)


def _security(body: str) -> bool:
    text = _bot_text(body)
    return any(p.search(text) for p in _SECURITY_TEXT)


# --- parse_deps_pr ------------------------------------------------------------------------------

_RESERVED_NAMES = frozenset({"version", "versions", "the", "all", "dependencies", "deps", "to"})


#: The official apps' logins (without "[bot]"); a look-alike app keeps its own name.
_OFFICIAL = {"dependabot": "dependabot", "dependabot-preview": "dependabot", "renovate": "renovate"}


def _bot_name(author: str) -> str | None:
    login = author.strip()
    if not login.lower().endswith("[bot]") or len(login) <= 5:
        return None
    name = login[:-5]
    return _OFFICIAL.get(name.lower(), name)


def parse_deps_pr(*, title: str, branch: str, body: str | None, author: str) -> DepsPR | None:
    """None when this is not a dependency-update PR we understand (never raises on odd input)."""
    bot = _bot_name(author or "")
    if bot is None:
        return None
    title_line, branch_line = _line(title or ""), _line(branch or "").replace(" ", "")
    text = (body or "")[:_MAX_BODY]
    core, title_security = _strip_affixes(title_line)
    security = title_security or _security(text)
    db_branch = _dependabot_branch(branch_line)
    rn_branch = _RENOVATE_BRANCH.match(branch_line)

    db_title = _dependabot_title(core)
    rn_title = _renovate_title(core)
    renovate_like = bot == "renovate" or "renovate" in bot.lower()  # self-hosted Renovate apps
    if bot == "dependabot" or (not renovate_like and db_branch is not None):
        return _from_dependabot(bot, db_title, db_branch, text, security)
    if renovate_like or rn_branch is not None:
        return _from_renovate(bot, rn_title, db_title, rn_branch, text, security, strict=False)
    # Another bot: only a title in a strict form.
    if db_title is not None and db_title.kind == "single" and db_title.old is not None:
        if db_title.names[0].lower() in _RESERVED_NAMES or _parse_version(db_title.old) is None:
            return None
        return _from_dependabot(bot, db_title, None, text, security)
    return _from_renovate(bot, rn_title, None, None, text, security, strict=True)


def _from_dependabot(
    bot: str,
    title: _DbTitle | None,
    branch: _DbBranch | None,
    body: str,
    security: bool,
) -> DepsPR | None:
    badge = _DB_BADGE.search(body)
    ecosystem = branch.ecosystem if branch else (unquote(badge["pm"]) if badge else None)
    body_updates, body_group = _dependabot_body_updates(body, ecosystem)
    intro = _DB_INTRO.search(body)
    intro_name = (intro["lname"] or intro["pname"]) if intro else None

    def found(name: str) -> tuple[str | None, str | None]:
        """(old, new) for ``name`` from the body or the branch."""
        for u in body_updates:
            if u.package == name:
                return u.old, u.new
        if intro is not None and intro_name == name:
            return (_clean_version(intro["old"]) if intro["old"] else None), _clean_version(
                intro["new"]
            )
        if badge is not None and unquote(badge["name"]) == name:
            return unquote(badge["old"]) or None, unquote(badge["new"])
        if branch is not None and branch.name is not None and branch.new is not None:
            if branch.name == name or branch.name.lstrip("@") == name.lstrip("@"):
                return None, branch.new
        return None, None

    if title is None:
        # An odd title: what the body says, else what the branch says.
        group = body_group or (branch.group if branch else None)
        if body_updates:
            return DepsPR(bot, _dedupe(body_updates), group, security)
        if intro is not None and intro_name:
            old, new = found(intro_name)
            if new:
                directory = branch.directory if branch else None
                update = DepUpdate(
                    intro_name, old, new, update_type(old, new), ecosystem, directory
                )
                return DepsPR(bot, [update], group, security)
        if branch is not None and branch.name and branch.new:
            update = DepUpdate(branch.name, None, branch.new, "other", ecosystem, branch.directory)
            return DepsPR(bot, [update], group, security)
        if branch is not None and group:
            return DepsPR(bot, [], group, security)
        return None

    def directory_for(name: str | None) -> str | None:
        if title.directory:
            return title.directory
        if not title.across:
            return None
        for u in body_updates:
            if u.package == name and u.directory:
                return u.directory
        return branch.directory if branch else None

    group = title.group or (body_group if title.kind == "group" else None)
    if title.kind == "group":
        updates = [_with_dir(u, title.directory) for u in body_updates]
        return DepsPR(bot, _dedupe(updates), group, security)
    if title.kind == "multi":
        listed = set(title.names)
        updates = [_with_dir(u, title.directory) for u in body_updates if u.package in listed] or [
            _with_dir(u, title.directory) for u in body_updates
        ]
        return DepsPR(bot, _dedupe(updates), group, security)

    name = title.names[0]
    old, new = title.old, title.new
    if new is None:
        old, new = found(name)
    elif old is None:
        body_old, body_new = found(name)
        old = body_old if body_new == new else None
    if not new:
        return DepsPR(bot, [], group, security) if group else None
    update = DepUpdate(name, old, new, update_type(old, new), ecosystem, directory_for(name))
    return DepsPR(bot, [update], group, security)


def _with_dir(update: DepUpdate, directory: str | None) -> DepUpdate:
    if directory is None or update.directory is not None:
        return update
    return DepUpdate(
        update.package, update.old, update.new, update.update_type, update.ecosystem, directory
    )


def _from_renovate(
    bot: str,
    title: _RnTitle | None,
    db_title: _DbTitle | None,
    branch: re.Match[str] | None,
    body: str,
    security: bool,
    *,
    strict: bool,
) -> DepsPR | None:
    hint = title.ecosystem if title else None
    table = _renovate_table(body, hint)
    if title is None and db_title is not None and db_title.kind == "single" and not strict:
        # A Renovate configured with Dependabot-like messages ("Bump x from a to b").
        name, old, new = db_title.names[0], db_title.old, db_title.new or ""
        if new:
            update = DepUpdate(name, old, new, update_type(old, new), None, db_title.directory)
            return DepsPR(bot, [update], None, security)
    if title is None:
        if strict:
            return None
        if table:
            return DepsPR(bot, _dedupe(table), None, security)
        topic = branch["topic"] if branch else ""
        pkg = _RENOVATE_BRANCH_PKG.match(topic)
        if pkg:
            update = DepUpdate(pkg["name"], None, f"{pkg['major']}.x", "other", None, None)
            return DepsPR(bot, [update], None, security)
        return DepsPR(bot, [], topic, security) if topic.startswith("all-") else None
    if strict and not title.strict:
        return None
    if title.name is not None and title.name.lower() in _RESERVED_NAMES:
        return None
    if table:
        return DepsPR(bot, _dedupe(table), title.group, security)
    if title.name is not None and title.new is not None:
        update = DepUpdate(title.name, None, title.new, "other", title.ecosystem, None)
        return DepsPR(bot, [update], title.group, security)
    if title.group is not None and not strict:
        return DepsPR(bot, [], title.group, security)
    return None


# --- release_notes ------------------------------------------------------------------------------

_BOILERPLATE = re.compile(
    r"\[!\[Dependabot compatibility score\]"
    r"|Dependabot will resolve any conflicts with this PR"
    r"|<summary>\s*Dependabot commands and options\s*</summary>"
    r"|You can trigger Dependabot actions by commenting on this PR"
    r"|\[//\]: # \(dependabot-automerge-start\)"
    r"|^#{2,4}[ \t]*Configuration[ \t]*\n+[ \t]*📅"
    r"|^[ \t]*-[ \t]*\[[ xX]?\][ \t]*(?:<!--[^>]*-->)?[ \t]*If you want to rebase/retry this PR"
    r"|This PR (?:has been|was) generated by \[",
    re.MULTILINE | re.IGNORECASE,
)
_NOTES_START = re.compile(
    r"^#{2,4}[ \t]*(?:(?:GitHub |OSV )?Vulnerability Alerts|Release Notes)[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_RENOVATE_TABLE_INTRO = re.compile(r"^This PR contains the following updates:[ \t]*$", re.MULTILINE)
_MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\((?:[^()\s]|\([^()\s]*\))*\)")
_MD_COMMENT_LINE = re.compile(r"^\[//\]: # \(.*\)[ \t]*$", re.MULTILINE)
_SCRIPT = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)", re.DOTALL | re.IGNORECASE)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LI = re.compile(r"<li\b[^<>]*>", re.IGNORECASE)
_BLOCK = re.compile(
    r"</?(?:p|div|ul|ol|li|h[1-6]|blockquote|details|summary|pre|table|thead|tbody|tr|hr|dl|dt|dd)"
    r"\b[^<>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_QUOTE_MARKS = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE)
_SPACES = re.compile(r"[ \t\f\v]+")
_LIST_GAPS = re.compile(r"\n{2,}(?=- )")
_TRAILING_RULES = re.compile(r"(?:(?:^|\n)[ \t]*(?:-{3,}|\*{3,})[ \t]*)+\s*$")


def _boilerplate_start(text: str, start: int = 0) -> int:
    m = _BOILERPLATE.search(text, start)
    return m.start() if m else len(text)


def _to_plain(text: str) -> str:
    text = _SCRIPT.sub("", text)
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _BR.sub("\n", text)
    text = _LI.sub("\n- ", text)
    text = _BLOCK.sub("\n", text)
    text = _TAG.sub("", text)
    text = _QUOTE_MARKS.sub("", text)
    text = html.unescape(text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return _LIST_GAPS.sub("\n", "\n".join(lines))


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    if max_chars <= 0:
        return ""

    def marker(cut: int) -> str:
        return f"\n[… release notes cut here: {cut} more characters …]"

    keep = max_chars - len(marker(len(text)))
    if keep < 1:
        return text[:max_chars]
    head = text[:keep]
    boundary = max(head.rfind("\n"), head.rfind(" "))
    if boundary > keep * 0.8:
        head = head[:boundary]
    head = head.rstrip()
    return head + marker(len(text) - len(head))


def release_notes(body: str | None, *, max_chars: int = 6000) -> str:
    """The release notes / changelog / commits text the bot quoted, as plain text.

    HTML tags stripped (<details>, <summary>, <blockquote>, <p>, <a href> -> keep link text;
    markdown links keep their text, images go), HTML comments dropped, HTML entities unescaped,
    Dependabot's trailing "Dependabot commands and options" boilerplate and compatibility-score
    badges removed (Renovate's table, configuration and footer too), invisible/zero-width
    characters removed, capped at ``max_chars`` with a marked cut. The result is UNTRUSTED text
    for a model.
    """
    if not body:
        return ""
    text = _HTML_COMMENT.sub("", body[:_MAX_BODY])
    text = _INVISIBLE.sub("", text)
    start = _NOTES_START.search(text)
    if start is not None:
        text = text[start.start() :]
    else:
        intro = _RENOVATE_TABLE_INTRO.search(text)
        if intro is not None:
            rest = text[intro.end() :].lstrip("\n").splitlines(keepends=True)
            table = 0
            while table < len(rest) and rest[table].lstrip().startswith("|"):
                table += 1
            text = text[: intro.start()] + "".join(rest[table:])
    text = text[: _boilerplate_start(text)]
    text = _MD_COMMENT_LINE.sub("", text)
    text = _to_plain(text)
    text = _TRAILING_RULES.sub("", strip_hidden(text))
    return _cap(text.strip(), max_chars)
