"""Maven build failures other than test failures and compiler errors (see `surefire`, `javac`).

Three parsers:

- ``maven-dependency``: artifact and plugin resolution, e.g. ``[ERROR] Failed to execute goal on
  project demo: Could not resolve dependencies for project com.example:demo:jar:1.0-SNAPSHOT:
  Cannot access central (…) in offline mode and the artifact com.google.guava:guava:jar:33.0.0-jre
  has not been downloaded from it before.``, ``[ERROR] Plugin org.apache.maven.plugins:
  maven-failsafe-plugin:3.2.5 or one of its dependencies could not be resolved: … Could not
  transfer artifact …``, ``[FATAL] Non-resolvable parent POM for …``; one failure per
  artifact (Maven repeats the parent POM's). Only ``[ERROR]``/``[FATAL]`` lines count (a
  ``[WARNING] Could not transfer metadata …`` is not a failure). Category "dependency", even
  when the cause is the network (``Unknown host repo.maven.apache.org``): the build could not
  get an artifact;
- ``maven-enforcer``: ``[ERROR] Rule 0: org.apache.maven.plugins.enforcer.RequireJavaVersion
  failed with message:`` and the message on the next line(s) (enforcer 1.x–3.x print the rule
  line as ``[WARNING]`` or ``[ERROR]``); ``Some Enforcer rules have failed`` when no rule line is
  in the log. `code` is the rule (``RequireJavaVersion``). Java/Maven version, vendor and OS
  rules are "infrastructure" (the runner's toolchain), dependency rules (convergence, banned
  or snapshot dependencies, upper bounds) "dependency", the others "lint";
- ``maven``: ``[ERROR] Failed to execute goal <plugin>:<goal> (…) on project demo: <message>``
  for the goals the other parsers do not cover (``spotless:check`` is "format", checkstyle/PMD/
  SpotBugs "lint", ``Fatal error compiling`` "compile", …). The failures of the compiler,
  Surefire/Failsafe, enforcer, Checkstyle and dependency resolution are left to their parsers:
  this line is only their trailer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Category, Failure, clip

_HELP = re.compile(r"\s*-> \[Help \d+\]\s*$")
_ARTIFACT = re.compile(r"artifact ([\w.-]+:[\w.-]+(?::[\w.-]+){1,3})")
_PLUGIN = re.compile(r"Plugin ([\w.-]+:[\w.-]+:[\w.-]+) or one of its dependencies could not be")
_DEPENDENCY_NEEDLES = (
    "Could not resolve dependencies for project",
    "or one of its dependencies could not be resolved",
    "Could not transfer artifact",
    "Non-resolvable parent POM",
    "Non-resolvable import POM",
    "Could not find artifact",
    "Failure to find ",
    "has not been downloaded from it before",
)


def _body(text: str) -> str:
    return _HELP.sub("", text.removeprefix("[ERROR]").removeprefix("[FATAL]").strip())


class MavenDependencyParser:
    name = "maven-dependency"
    ecosystem = "jvm"
    needles: tuple[str, ...] = _DEPENDENCY_NEEDLES

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            text = lines[i]
            if not text.startswith(("[ERROR]", "[FATAL]")):
                continue
            body = _body(text)
            plugin = _PLUGIN.search(body)
            artifact = _ARTIFACT.search(body)
            subject = plugin.group(1) if plugin else artifact.group(1) if artifact else body
            if subject in seen:
                continue
            seen.add(subject)
            if plugin:
                code = "plugin-resolution"
            elif "parent POM" in body or "import POM" in body:
                code = "parent-pom"
            else:
                code = "dependency-resolution"
            out.append(
                Failure(
                    kind="dependency",
                    tool=self.name,
                    message=clip(body),
                    test_id=None,
                    code=code,
                    log_line=i,
                )
            )
        return out


_RULE = re.compile(
    r"^\[(?:ERROR|WARNING)\] Rule \d+: (?P<rule>[\w.$]+) failed with message:\s*(?P<msg>.*)$"
)
_TOOLCHAIN_RULES = {
    "RequireJavaVersion",
    "RequireMavenVersion",
    "RequireJavaVendor",
    "RequireOS",
    "RequireEnvironmentVariable",
}
_DEPENDENCY_RULES = {
    "DependencyConvergence",
    "BannedDependencies",
    "RequireUpperBoundDeps",
    "RequireReleaseDeps",
    "BanDuplicatePomDependencyVersions",
    "BanTransitiveDependencies",
    "BanDynamicVersions",
    "RequirePluginVersions",
    "BanDistributionManagement",
}


def _rule_kind(rule: str) -> Category:
    if rule in _TOOLCHAIN_RULES:
        return "infrastructure"
    if rule in _DEPENDENCY_RULES:
        return "dependency"
    return "lint"


class MavenEnforcerParser:
    name = "maven-enforcer"
    ecosystem = "jvm"
    needles: tuple[str, ...] = ("failed with message:", "Some Enforcer rules have failed")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        trailer: int | None = None
        for i in hits:
            text = lines[i]
            m = _RULE.match(text)
            if m:
                rule = m.group("rule").rsplit(".", 1)[-1]
                detail = [m.group("msg").strip()] if m.group("msg").strip() else []
                for j in range(i + 1, min(len(lines), i + 8)):
                    nxt = lines[j]
                    if nxt.startswith("[ERROR] ") and not _RULE.match(nxt) and not detail:
                        nxt = nxt[8:]  # enforcer 3.2+ prefixes the message lines
                    elif nxt.startswith("[") or not nxt.strip():
                        break
                    detail.append(nxt.strip())
                out.append(
                    Failure(
                        kind=_rule_kind(rule),
                        tool=self.name,
                        message=clip(f"{rule}: {' '.join(detail)}" if detail else rule),
                        code=rule,
                        log_line=i,
                    )
                )
            elif "Some Enforcer rules have failed" in text and trailer is None:
                trailer = i
        if not out and trailer is not None:
            out.append(
                Failure(
                    kind="lint",
                    tool=self.name,
                    message=clip(_body(lines[trailer])),
                    code="enforcer",
                    log_line=trailer,
                )
            )
        return out


_GOAL = re.compile(
    r"^\[ERROR\] Failed to execute goal "
    r"(?:(?P<group>[\w.-]+):(?P<artifact>[\w.-]+):(?P<version>[^:\s]+):(?P<goal>[\w.-]+)"
    r" \([^)]*\) )?on project (?P<project>[\w.-]+): (?P<msg>.*)$"
)
_COVERED = (
    "Compilation failure",
    "There are test failures",
    "There was a timeout",
    "The forked VM terminated",
    "Some Enforcer rules have failed",
    "Checkstyle violation",
    *_DEPENDENCY_NEEDLES,
)
_KINDS: tuple[tuple[tuple[str, ...], Category], ...] = (
    (("spotless", "fmt-maven", "formatter", "prettier", "sortpom", "tidy"), "format"),
    (
        (
            "checkstyle",
            "pmd",
            "spotbugs",
            "findbugs",
            "forbiddenapis",
            "errorprone",
            "rat",
            "enforcer",
        ),
        "lint",
    ),
    (("compiler", "kotlin", "scala", "groovy", "javadoc"), "compile"),
    (("surefire", "failsafe", "jacoco", "pitest"), "test"),
    (("dependency", "versions"), "dependency"),
)


def _goal_kind(artifact: str, message: str) -> Category:
    name = artifact.lower()
    for keys, kind in _KINDS:
        if any(k in name for k in keys):
            return kind
    if "Could not resolve" in message or "Could not find" in message:
        return "dependency"
    return "unknown"


class MavenGoalParser:
    name = "maven"
    ecosystem = "jvm"
    needles: tuple[str, ...] = ("[ERROR] Failed to execute goal ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        seen: set[tuple[str, str]] = set()
        for i in hits:
            m = _GOAL.match(lines[i])
            if not m:
                continue
            msg = _HELP.sub("", m.group("msg")).strip()
            if any(c in msg for c in _COVERED):
                continue
            artifact = m.group("artifact") or ""
            short = (
                artifact.removeprefix("maven-")
                .removesuffix("-maven-plugin")
                .removesuffix("-plugin")
            )
            code = f"{short}:{m.group('goal')}" if artifact else "build"
            if (code, msg) in seen:
                continue
            seen.add((code, msg))
            out.append(
                Failure(
                    kind=_goal_kind(artifact, msg),
                    tool=self.name,
                    message=clip(f"{code} on project {m.group('project')}: {msg}"),
                    code=code,
                    log_line=i,
                )
            )
        return out


PARSERS = (MavenDependencyParser(), MavenEnforcerParser(), MavenGoalParser())
