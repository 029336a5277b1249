"""What a repository's tests need installed, read from its config files on the host (never run):
the default setup commands (`default_setup_commands`) when `commands.setup` is not configured.

Sources, each parsed defensively (a symlink out of the tree, a huge or malformed file is
skipped): extras and PEP 735 dependency groups, poetry's dev groups, test requirement files,
tox's `[testenv] deps`, and the pytest plugins the project's `addopts` need.
See docs/sandbox.md.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterable, Sequence
from configparser import ConfigParser
from configparser import Error as ConfigParserError
from pathlib import Path
from typing import Any


def _extras_declared(workdir: Path) -> set[str]:
    extras: set[str] = set()
    pyproject = workdir / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            extras.update(data.get("project", {}).get("optional-dependencies", {}) or {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
            pass
    setup_cfg = workdir / "setup.cfg"
    if setup_cfg.is_file():
        parser = ConfigParser()
        try:
            parser.read_string(setup_cfg.read_text(encoding="utf-8"))
            if parser.has_section("options.extras_require"):
                extras.update(parser.options("options.extras_require"))
        except (ConfigParserError, UnicodeDecodeError):
            pass
    return extras


#: Extra-name / dependency-group preference, shared by the extras, PEP 735 and poetry lookups.
_TEST_GROUPS = ("test", "tests", "testing", "dev")

#: Top-level test/dev requirement files, in the order they are installed.
_TEST_REQUIREMENT_FILES = (
    "requirements-dev.txt",
    "requirements_dev.txt",
    "dev-requirements.txt",
    "test-requirements.txt",
    "test_requirements.txt",
    "requirements-test.txt",
    "requirements_test.txt",
    "requirements-tests.txt",
)
_TEST_REQUIREMENT_GLOBS = ("requirements/test*.txt", "requirements/dev*.txt")

#: A repository file bigger than this is not a config file worth parsing on the host.
_MAX_CONFIG_BYTES = 1 << 20

#: addopts flags that fail pytest's argument parsing unless their plugin is installed.
_ADDOPTS_PLUGINS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"--(no-)?cov([-_][\w-]*)?(=.*)?"), "pytest-cov"),
    (re.compile(r"-n(\d+|auto|logical)?|--numprocesses(=.*)?|--dist(=.*)?"), "pytest-xdist"),
    (re.compile(r"--timeout([-_][\w-]*)?(=.*)?"), "pytest-timeout"),
    (re.compile(r"--benchmark([-_][\w-]*)?(=.*)?"), "pytest-benchmark"),
    (re.compile(r"--(reruns|only-rerun)([-_][\w-]*)?(=.*)?"), "pytest-rerunfailures"),
)

_REQ_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
#: tox factor-conditional deps ("py311: x", "!cov,lint: y") apply to some environments only.
_TOX_FACTOR = re.compile(r"[A-Za-z0-9_.,!-]+:(?!//)")
_TOX_REQ_OPTION = re.compile(r"(-r|-c|--requirement|--constraint)(?:\s*=\s*|\s*)(\S+)")


def _normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _config_text(workdir: Path, name: str) -> str | None:
    # Parsed on the host, so a symlink or a huge file in the repository must not make us read
    # something outside it (or spend memory on it).
    path = workdir / name
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_CONFIG_BYTES:
            return None
        if not path.resolve().is_relative_to(workdir.resolve()):
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, RuntimeError, UnicodeDecodeError):
        return None


def _load_toml(workdir: Path, name: str) -> dict[str, Any]:
    text = _config_text(workdir, name)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return {}


def _load_ini(workdir: Path, name: str) -> ConfigParser | None:
    text = _config_text(workdir, name)
    if text is None:
        return None
    # No interpolation: "%" is common in addopts and deps and would raise on access.
    parser = ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except ConfigParserError:
        return None
    return parser


def _ini_value(parser: ConfigParser | None, section: str, option: str) -> str | None:
    if parser is None or not parser.has_option(section, option):
        return None
    try:
        return parser.get(section, option)
    except ConfigParserError:
        return None


def _table(data: object, *keys: str) -> dict[str, Any]:
    for key in keys:
        if not isinstance(data, dict):
            return {}
        data = data.get(key)
    return data if isinstance(data, dict) else {}


def _requirement_file(workdir: Path, rel: str) -> str | None:
    """`rel` as a workspace-relative posix path if it names a regular file inside `workdir`."""
    path = workdir / rel
    try:
        if path.is_symlink() or not path.is_file():
            return None
        resolved, root = path.resolve(), workdir.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None
    if not resolved.is_relative_to(root):
        return None
    return resolved.relative_to(root).as_posix()


def _is_requirement(req: str) -> bool:
    # Requirement strings become pip arguments: one starting with "-" would be an option.
    return bool(req) and "\n" not in req and _REQ_NAME.match(req) is not None


def _test_requirement_files(workdir: Path) -> list[str]:
    found: list[str] = []
    for name in _TEST_REQUIREMENT_FILES:
        rel = _requirement_file(workdir, name)
        if rel is not None:
            found.append(rel)
    for pattern in _TEST_REQUIREMENT_GLOBS:
        for path in sorted(workdir.glob(pattern)):
            rel = _requirement_file(workdir, path.relative_to(workdir).as_posix())
            if rel is not None:
                found.append(rel)
    return found


def _tox_deps(workdir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(`-r`/`-c`, file) pairs and requirement strings from tox.ini `[testenv] deps`."""
    raw = _ini_value(_load_ini(workdir, "tox.ini"), "testenv", "deps")
    if raw is None:
        return [], []
    files: list[tuple[str, str]] = []
    reqs: list[str] = []
    for line in re.sub(r"\\\s*\n", " ", raw).splitlines():
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        if not line or "{" in line or _TOX_FACTOR.match(line):
            continue
        option = _TOX_REQ_OPTION.fullmatch(line)
        if option is not None:
            rel = _requirement_file(workdir, option.group(2))
            if rel is not None:
                # A constraints file stays a constraint: installing every pin it lists as a
                # requirement would pull in packages the tests never asked for.
                files.append(("-c" if option.group(1) in ("-c", "--constraint") else "-r", rel))
            continue
        if line.startswith(".") or not _is_requirement(line):
            continue  # the project itself (".", ".[x]") is installed already; options skipped
        reqs.append(line)
    return files, reqs


def _dependency_group(pyproject: dict[str, Any]) -> list[str]:
    """PEP 735: the first test-like group, with `{include-group = ...}` flattened."""
    # Reversed so that, of two names that normalise alike (invalid per PEP 735), the first wins.
    groups = {
        _normalize_name(name): value
        for name, value in reversed(list(_table(pyproject, "dependency-groups").items()))
    }

    def flatten(name: str, seen: frozenset[str]) -> list[str]:
        entries = groups.get(name)
        if not isinstance(entries, list) or name in seen:
            return []  # malformed, or an include cycle
        out: list[str] = []
        for entry in entries:
            if isinstance(entry, str):
                if _is_requirement(entry.strip()):
                    out.append(entry.strip())
            elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
                out += flatten(_normalize_name(entry["include-group"]), seen | {name})
        return out

    chosen = next((g for g in _TEST_GROUPS if isinstance(groups.get(g), list)), None)
    return flatten(chosen, frozenset()) if chosen else []


_VERSION = r"\d+(?:\.\d+)*(?:(?:a|b|rc|\.post|\.dev)\d+)*"
_PEP440_CLAUSE = rf"(?:==|!=|>=|<=|>|<|~=)\s*{_VERSION}"


def _poetry_constraint(spec: str) -> str | None:
    """A simple poetry version constraint as PEP 440 ("" for any), `None` when not simple."""
    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    if re.fullmatch(rf"\^{_VERSION}", spec):
        return ">=" + spec[1:]
    if re.fullmatch(rf"~{_VERSION}", spec):
        # "~=" needs two release components; poetry's "~1" means >=1,<2, which is "~=1.0".
        return "~=" + spec[1:] + ("" if "." in spec else ".0")
    if re.fullmatch(rf"{_VERSION}(?:\.\*)?", spec):
        return "==" + spec
    if re.fullmatch(rf"{_PEP440_CLAUSE}(?:\s*,\s*{_PEP440_CLAUSE})*", spec):
        return re.sub(r"\s+", "", spec)
    return None


def _poetry_requirement(name: str, spec: object) -> str | None:
    if _normalize_name(name) == "python" or _REQ_NAME.fullmatch(name) is None:
        return None
    extras = ""
    if isinstance(spec, dict):
        # Local, VCS and private-index dependencies cannot be expressed as a plain requirement.
        if any(k in spec for k in ("path", "git", "url", "file", "source")):
            return None
        listed = spec.get("extras")
        if isinstance(listed, list) and all(
            isinstance(e, str) and _REQ_NAME.fullmatch(e) for e in listed
        ):
            extras = f"[{','.join(listed)}]" if listed else ""
        spec = spec.get("version", "*")
    elif isinstance(spec, list):
        # Per-python alternatives: the package is needed, pip picks a version that installs.
        if not all(
            isinstance(s, dict) and s.keys().isdisjoint(("path", "git", "url", "file", "source"))
            for s in spec
        ):
            return None
        spec = "*"
    if not isinstance(spec, str):
        return None
    constraint = _poetry_constraint(spec)
    # A constraint we cannot translate is dropped, not the dependency: tests are likelier to
    # run with some version of it than without it.
    return f"{name}{extras}{constraint or ''}"


def _poetry_deps(pyproject: dict[str, Any]) -> list[str]:
    poetry = _table(pyproject, "tool", "poetry")
    tables = [_table(poetry, "group", g, "dependencies") for g in _TEST_GROUPS]
    tables.append(_table(poetry, "dev-dependencies"))
    reqs: list[str] = []
    for deps in tables:
        for name, spec in deps.items():
            req = _poetry_requirement(name, spec)
            if req is not None:
                reqs.append(req)
    return reqs


def _pytest_addopts(workdir: Path, pyproject: dict[str, Any]) -> list[str]:
    """addopts from the config file pytest itself would pick (its precedence order)."""
    raw: object = None
    for name in ("pytest.ini", ".pytest.ini"):
        if _config_text(workdir, name) is not None:
            raw = _ini_value(_load_ini(workdir, name), "pytest", "addopts")
            break
    else:
        if "ini_options" in _table(pyproject, "tool", "pytest"):
            raw = _table(pyproject, "tool", "pytest", "ini_options").get("addopts")
        else:
            for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
                parser = _load_ini(workdir, name)
                if parser is not None and parser.has_section(section):
                    raw = _ini_value(parser, section, "addopts")
                    break
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    args: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        try:
            args += shlex.split(item)
        except ValueError:
            continue  # unbalanced quotes
    return args


def _addopts_plugins(addopts: Sequence[str]) -> list[str]:
    return [p for pattern, p in _ADDOPTS_PLUGINS if any(pattern.fullmatch(a) for a in addopts)]


def _extra_requirements(workdir: Path, skip_files: Iterable[str]) -> list[str]:
    """pip arguments for test dependencies beyond the project itself, de-duplicated, stable."""
    seen: set[tuple[str, str]] = {("-r", rel) for rel in skip_files}
    file_args: list[str] = []
    tox_args, tox_reqs = _tox_deps(workdir)
    for flag, rel in [*(("-r", rel) for rel in _test_requirement_files(workdir)), *tox_args]:
        if (flag, rel) not in seen:
            seen.add((flag, rel))
            file_args += [flag, rel]

    pyproject = _load_toml(workdir, "pyproject.toml")
    reqs: list[str] = []
    for req in [*tox_reqs, *_dependency_group(pyproject), *_poetry_deps(pyproject)]:
        req = re.sub(r"\s+", " ", req.strip())
        if req not in reqs:
            reqs.append(req)
    named = {_normalize_name(m.group(0)) for r in reqs if (m := _REQ_NAME.match(r))}
    reqs += [p for p in _addopts_plugins(_pytest_addopts(workdir, pyproject)) if p not in named]
    if not reqs and all(flag == "-c" for flag in file_args[::2]):
        return []  # constraints alone: pip refuses an install with nothing to install
    return [*file_args, *reqs]


def default_setup_commands(workdir: Path) -> list[list[str]]:
    """Create a venv at `{venv}` and install the project with its test dependencies, plus pytest.

    A project (pyproject.toml / setup.py / setup.cfg) is installed editable with the first
    declared extra among test, tests, testing, dev, then a second pip command installs the
    other test dependencies found (see `_extra_requirements` and docs/sandbox.md); a
    requirements-only repository gets its requirements*.txt files and those dependencies in a
    single command. pytest is always added, since it runs the tests.
    """
    pip = ["{venv}/bin/python", "-m", "pip", "install", "--disable-pip-version-check"]
    cmds: list[list[str]] = [["python3", "-m", "venv", "{venv}"]]
    is_project = any((workdir / n).is_file() for n in ("pyproject.toml", "setup.py", "setup.cfg"))
    if is_project:
        try:
            extras = _extras_declared(workdir)
        except TypeError:  # e.g. `optional-dependencies = 1`, which it does not guard against
            extras = set()
        chosen = next((e for e in _TEST_GROUPS if e in extras), None)
        cmds.append([*pip, "-e", f".[{chosen}]" if chosen else ".", "pytest"])
        extra = _extra_requirements(workdir, ())
        if extra:
            cmds.append([*pip, *extra])
    else:
        reqs = [p.name for p in sorted(workdir.glob("requirements*.txt")) if p.is_file()]
        args: list[str] = []
        for name in reqs:
            args += ["-r", name]
        cmds.append([*pip, *args, *_extra_requirements(workdir, reqs), "pytest"])
    return cmds
