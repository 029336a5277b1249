"""Deterministic checks for what a small triage model cannot be trusted with.

Measured on the embedded Gemma 3 270M: it calls every issue `critical`, asks every bug reporter
for "version / steps to reproduce / error output" whether or not the report has them, and often
answers the summary with a sentence of the prompt itself ("The issue is in the UNTRUSTED-ISSUE
block above…"). So:

- `honest_summary` keeps the model's summary only when it does not repeat the prompt, talk about
  the prompt, or say nothing; otherwise the issue's own (cleaned) title is posted.
- `missing_information` reads a bug report for a version, steps to reproduce and the error
  output, and asks only for what is not there; what issue templates leave behind (headings,
  `_No response_`, "1. Go to '...'", empty code fences, HTML comments) does not count.
- `severity_to_post` posts a severity only when a model measured on severity decided it.

Everything here is pure: no I/O, no model, the same answer for the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.text import strip_hidden

# --- one line of untrusted text in our comment --------------------------------------------------

_MENTION = re.compile(r"(?<![\w`/@.])@([A-Za-z0-9][A-Za-z0-9-]{0,38}(?:/[\w.-]+)?)")


def inline(text: str, max_words: int | None = None) -> str:
    """Untrusted text made safe for one line of our comment: hidden text removed, whitespace
    collapsed, @mentions put in code spans (quoting a title must not ping anyone), and cut to
    `max_words` words with an ellipsis."""
    words = strip_hidden(text).split()
    if max_words is not None and len(words) > max_words:
        words = [*words[:max_words], "…"]
    return _MENTION.sub(r"`@\1`", " ".join(words))


# --- summaries ----------------------------------------------------------------------------------

#: Consecutive words a summary may share with the instructions before it counts as an echo.
ECHO_NGRAM = 6
#: A summary with fewer words or characters says nothing.
MIN_SUMMARY_WORDS = 2
MIN_SUMMARY_CHARS = 8
#: The title fallback is cut to this many words.
FALLBACK_WORDS = 20

_UNTRUSTED_BLOCK = re.compile(
    r"<<<UNTRUSTED-(?P<label>[A-Z0-9_-]+)\n(?P<body>.*?)\nUNTRUSTED-(?P=label)>>>", re.S
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

#: Words about the prompt rather than the issue. Each is rejected only when the issue itself
#: does not use it: the summary of "JSON parser drops keys" may well say JSON.
_MACHINERY_TERMS = frozenset(
    {
        "untrusted",
        "json",
        "schema",
        "prompt",
        "instructions",
        "triage",
        "maintainer",
        "stranger",
        "missing_information",
    }
)
#: Phrases about the prompt's layout or about the model itself; also rejected only when the
#: issue does not use them ("The issue is in the date parser" is a summary).
_MACHINERY_PHRASES = re.compile(
    r"\b(?:(?:the |this |that )?block (?:above|below)|above block|the block|issue block"
    r"|data block|delimited block"
    r"|the issue is in (?:the )?(?:block|above|following|text|data|untrusted|prompt|message)"
    r"|issue (?:text )?(?:above|below)"
    r"|as an ai|an ai (?:language )?model|language model|i am an? (?:ai|assistant|model)"
    r"|i (?:can ?not|can't) (?:help|determine|answer|classify|summari[sz]e)"
    r"|i'm sorry|i am sorry|sure[,!] here|here is (?:the|a|my) (?:summary|answer|json)"
    r"|at most \d+ words)\b",
    re.I,
)
#: A summary made of nothing but these names a label, not what the author wants.
_LABEL_WORDS = frozenset(
    """
    a an the this that it its is are be of for in on to and or with as about
    issue issues report reported request requested ticket problem type kind category
    bug bugs feature features question questions docs doc documentation enhancement
    severity priority area none label labels summary
    low medium high critical minor major trivial cosmetic urgent
    new github repository repo user users author reporter reports reporting someone says
    wants describes
    """.split()
)
_TYPE_TAG = r"bug|feature|question|docs?|documentation|request|issue|help|enhancement|proposal|rfc"
_TITLE_PREFIX = re.compile(
    rf"^\s*(?:\[[^\]]{{0,30}}\b(?:{_TYPE_TAG})\b[^\]]{{0,30}}\]\s*:?\s*"
    rf"|(?:{_TYPE_TAG}|feature request|bug report)\s*:\s*)+",
    re.I,
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def split_prompt(prompt: str) -> tuple[str, str]:
    """(the instructions, the untrusted text): the prompt outside and inside its untrusted-data
    blocks (`bot.text.untrusted_block`)."""
    inside = "\n".join(m.group("body") for m in _UNTRUSTED_BLOCK.finditer(prompt))
    return _UNTRUSTED_BLOCK.sub("\n", prompt), inside


def clean_title(title: str) -> str:
    """The issue's title as a summary: type tags (`[Bug]:`, `[DevTools Bug]`, `Feature
    request:`) dropped, one line, at most `FALLBACK_WORDS` words."""
    text = " ".join(strip_hidden(title).split())
    stripped = _TITLE_PREFIX.sub("", text).strip(" -:")
    return inline(stripped or text, FALLBACK_WORDS) or "(no title)"


def summary_problem(summary: str, *, prompt: str, title: str) -> str | None:
    """Why this model summary must not be posted, or None when it may be.

    `prompt` is what the model was given (every message's content, joined): its untrusted
    blocks are the issue, the rest is the instructions. `title` is the issue's title. Rejected:
    an empty or too short summary, one that only names labels ("Critical bug"), JSON, one that
    talks about the prompt ("UNTRUSTED", "schema", "the block above", "as an AI") in words the
    issue does not use, and one that shares `ECHO_NGRAM` consecutive words (case and
    punctuation aside; all of it, when shorter) with the instructions but not with the issue.
    """
    text = " ".join(strip_hidden(summary).split())
    words = _words(text)
    if not words:
        return "it is empty"
    if len(words) < MIN_SUMMARY_WORDS or len(text) < MIN_SUMMARY_CHARS:
        return f"it is too short ({text!r})"
    if "{" in text and '"' in text:
        return "it is JSON, not a sentence"
    if all(w in _LABEL_WORDS for w in words):
        return f"it only names a label ({text!r})"
    instructions, issue = split_prompt(prompt)
    issue_words = _words(f"{title}\n{issue}")
    issue_vocab, issue_text = set(issue_words), " ".join(issue_words)
    for phrase in _MACHINERY_PHRASES.finditer(text):
        if " ".join(_words(phrase.group(0))) not in issue_text:
            return f"it talks about the prompt ({phrase.group(0)!r})"
    for word in words:
        if word in _MACHINERY_TERMS and word not in issue_vocab:
            return f"it talks about the prompt ({word!r})"
    # An issue quoting a phrase that happens to be in the instructions is not an echo.
    n = min(ECHO_NGRAM, len(words))
    if n >= 3:
        echoed = _ngrams(words, n) & _ngrams(_words(instructions), n)
        echoed -= _ngrams(issue_words, n)
        if echoed:
            return f"it repeats the instructions ({' '.join(min(echoed))!r})"
    return None


def summary_ok(summary: str, *, prompt: str, title: str) -> bool:
    """Whether the model's summary may be posted (see `summary_problem`)."""
    return summary_problem(summary, prompt=prompt, title=title) is None


def honest_summary(summary: str, *, prompt: str, title: str) -> tuple[str, str]:
    """(the summary to post, why the model's was replaced — "" when it was kept).

    A kept summary is made safe for one line (`inline`); a rejected one (`summary_problem`)
    falls back to the issue's cleaned title (`clean_title`): at least the reporter's own words.
    """
    problem = summary_problem(summary, prompt=prompt, title=title)
    if problem is None:
        return inline(summary, 40), ""
    return clean_title(title), f"the model's summary was not used: {problem}"


# --- missing information in bug reports ---------------------------------------------------------

ASK_VERSION = "the version you use"
ASK_STEPS = "steps to reproduce"
ASK_ERROR = "the error output or traceback"

_FENCE = re.compile(
    r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)"
    r"(?:^[ \t]{0,3}(?P=fence)[`~]*[ \t]*$|\Z)",
    re.S | re.M,
)
_BLOCK_MARK = "\ue000"
_TOKEN_LINE = re.compile(rf"^{_BLOCK_MARK}(\d+){_BLOCK_MARK}$", re.M)
#: Markdown headings, bold-only lines ("**To Reproduce**") and label-only lines ("Steps to
#: Reproduce:"): the skeleton of an issue template, never evidence by itself.
_HEADING = re.compile(
    r"^[ \t]{0,3}(?:#{1,6}[ \t]+(?P<h1>[^\n]*?)[ \t#]*"
    r"|\*\*(?P<h2>[^*\n]{2,80})\*\*[ \t]*:?"
    r"|__(?P<h3>[^_\n]{2,80})__[ \t]*:?"
    r"|(?P<h4>[A-Z][^\n:`]{1,60}\??):)[ \t]*$",
    re.M,
)
#: Template hints: "[e.g. chrome, safari]", "(e.g. 22)".
_HINT = re.compile(r"[\[(][ \t]*(?:e\.g\.|eg\.|for example|ex\.)[^\])\n]*[\])]", re.I)
#: What issue-template tools leave in a section nobody filled in.
_PLACEHOLDER = re.compile(
    r"^(?:_?no response_?|n/?a|none|-+|\.+|…|\?+|tbd|todo|idk|unknown|not sure|no idea"
    r"|nothing|null|na|see above|same as above|see title|x|\[\s*\]"
    r"|a clear and concise description\b.*|if applicable, add\b.*"
    r"|add any other context\b.*|steps to reproduce the behaviou?r)\.?:?$",
    re.I,
)
#: A template's own example step ("1. Go to '...'", "2. Click on '....'", "4. See error").
_EXAMPLE_STEP = re.compile(
    r"'\.{3,}'|\"\.{3,}\"|‘…’|<[^>\n]{1,40}>|\.{4,}|^(?:see error|step \d*|\.\.\.)\.?$", re.I
)
_FENCE_LINE = re.compile(r"^(?:`{3,}|~{3,})[\w+#.-]*$")
_LIST_ITEM = re.compile(r"^[ \t]*(?P<marker>\d{1,2}[.)]|[-*+•])(?:[ \t]+(?P<text>.*))?$")
_KEY_ONLY = re.compile(r"^[\w .()/-]{1,40}:$")

_VERSION_HEADING = re.compile(
    r"version|environment|system info|platform|setup|\bos\b|browser|device|desktop", re.I
)
_STEPS_HEADING = re.compile(
    r"steps|reproduc|repro\b|how to|to trigger|code (?:example|sample|snippet)|sample code"
    r"|standalone code|minimal|example|what did you do|test case|link to",
    re.I,
)
_ERROR_HEADING = re.compile(
    r"\b(?:errors?|traceback|stack|logs?|crash(?:es)?|exceptions?|console|output)\b", re.I
)

#: Names whose bare integer is a version ("Windows 11", "Chrome 119", "Node 20").
_INT_PRODUCTS = (
    r"python|node\.?js|react|windows|chrome|chromium|firefox|safari|android|ios|ipados"
    r"|macos|java|jdk|openjdk|ubuntu|debian|fedora|centos|rhel|xcode|cuda|gcc|clang|electron"
)
#: Names that need a dotted version ("go 1.21"; "go 2 steps back" is not one).
_DOTTED_PRODUCTS = (
    r"py|node|npm|yarn|pnpm|deno|bun|next(?:\.?js)?|vue|angular|typescript|tensorflow|tf|keras|torch"
    r"|pytorch|numpy|pandas|jax|cudnn|vs ?code|visual studio code|code|mac ?os(?: x)?|os ?x"
    r"|alpine|mint|linux|kernel|wsl2?|g\+\+|msvc|cmake|go|golang|rust|rustc|cargo|ruby|rails"
    r"|php|dotnet|\.net|opencv|qt|bitcoin(?: core)?|bitcoind|docker|kubernetes|postgres(?:ql)?"
    r"|mysql|sqlite|redis|nginx|gradle|maven|win"
)
#: A failing CI run: a reproduction a maintainer can open, at a known commit (a version).
_CI_RUN = re.compile(
    r"\b(?:github\.com/[\w.-]+/[\w.-]+/(?:actions/)?runs/\d+|cirrus-ci\.com/task/\d+"
    r"|app\.circleci\.com/pipelines/\S+|buildkite\.com/[\w.-]+/[\w.-]+/builds/\d+)",
    re.I,
)
_VERSION_PATTERNS = (
    re.compile(r"(?<![\w.])v\d+(?:\.\d+)+", re.I),  # v1.2.3
    re.compile(r"(?<![\w.:/-])\d+\.\d+\.\d+(?!\.?\d)"),  # 4.28.0 (not an IP address)
    re.compile(r"\bversion[ \t]*[:=#]?[ \t]*v?\d+(?:\.\d+)*\b", re.I),
    re.compile(r"\b(?:ver\.?|release|build|tag)[ \t]*[:=#]?[ \t]*v?\d+(?:\.\d+)+", re.I),
    re.compile(
        rf"\b(?:{_INT_PRODUCTS})[ \t]*(?:version[ \t]*)?[:=@]?[ \t]*v?\d+(?:\.\d+)*\b", re.I
    ),
    re.compile(
        rf"\b(?:{_DOTTED_PRODUCTS})[ \t]*(?:version[ \t]*)?[:=@]?[ \t]*v?\d+(?:\.\d+)+", re.I
    ),
    re.compile(r"\b[\w.-]+[ \t]*(?:==|>=|~=|@\^?|@~)[ \t]*v?\d+(?:\.\d+)+", re.I),  # x==1.2, y@18.2
    re.compile(
        r"\b(?:commit|sha|revision|rev|nightly|master|main)\b[ \t:@(-]*[0-9a-f]{7,40}\b", re.I
    ),
    # "on the master branch", "pulled latest master", "built from `main` branch", "tf-nightly"
    re.compile(
        r"\b(?:on|from|at|of|with|using|pulled|built|tested|running)[ \t]+(?:the[ \t]+)?"
        r"(?:(?:latest|current)[ \t]+`?(?:master|main|head|nightly)\b"
        r"|`?(?:master|main|head|trunk|nightly|dev(?:elop)?)`?[ \t]+(?:branch|build)\b"
        r"|`?(?:master|head|nightly|trunk)\b(?![ \t]+(?:thread|window|process|key)))"
        r"|\b[\w-]+-nightly\b",
        re.I,
    ),
    _CI_RUN,
)
_STEP_PHRASES = re.compile(
    r"\b(?:steps to reproduce|to reproduce|reproduction steps|repro steps|how to reproduce)"
    r"(?: (?:it|this|the \w+))?[ \t]*[:,]"
    r"|\b(?:reproducible|reproduced|reproduce (?:it|this|the \w+)) (?:with|by|using)\b"
    r"|\b(?:minimal (?:repro|reproduction|example)|repro (?:repo|case))\b"
    r"|\b(?:when|if|after|whenever|once) (?:i|you|we) (?:run|click|open|type|call|press|start"
    r"|execute|launch|install|build|compile|import|load|save|select|drag|hover|paste|enter"
    r"|create|add|remove|delete|change|set|switch|upgrade|update|navigate|go to|rename|resize"
    r"|close|reload|refresh|restart|connect|upload|download|submit|scroll)\b"
    r"|\b(?:simply |just )?run(?:ning)? (?:`|the following|this (?:code|snippet|script))"
    r"|\bfollowing (?:code|snippet|script|command)\b",
    re.I,
)
_REPRO_LINK = re.compile(
    r"\b(?:codesandbox\.io|stackblitz\.com|jsfiddle\.net|codepen\.io|replit\.com|jsbin\.com"
    r"|colab\.research\.google\.com|gist\.github\.com|play\.rust-lang\.org|go\.dev/play"
    r"|godbolt\.org|github\.com/[\w.-]+/[\w.-]*repro[\w.-]*)"
    rf"|{_CI_RUN.pattern}",
    re.I,
)
_SHELL_LINE = re.compile(r"^[ \t]*(?:\$|PS [^>\n]*>|[A-Z]:\\[^>\n]*>)[ \t]+\S", re.M)
_ERROR_EVIDENCE = (
    re.compile(r"\b[A-Z]\w*(?:Error|Exception|Fault)\b:[ \t]+\S"),
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r"^[ \t]*File \"[^\"\n]+\", line \d+", re.M),  # Python frames
    # JS, Java and MSVC frames: "at f (x.js:1:2)", "at a.B(B.java:12)", "at C:\\x.cpp(282)"
    re.compile(r"^[ \t]*at [^\n]*(?:[\w)]:\d+(?::\d+)?\)?|\.\w+\(\d+\))[ \t]*$", re.M),
    re.compile(r"^[ \t]*#\d+[ \t]+0x[0-9a-f]+", re.M | re.I),  # native frames
    re.compile(
        r"(?:^|[ \t\[(])(?:error|exception|fatal|panic|failed|failure)(?:\[\w+\])?:[ \t]+\S",
        re.M | re.I,
    ),
    re.compile(r"^[ \t]*(?:\[?(?:ERROR|FATAL|CRITICAL|SEVERE)\]?|E[ \t]{2,}\w)", re.M),
    re.compile(
        r"\b(?:segmentation fault|segfault|core dumped|abort trap|bus error|out of memory"
        r"|killed by signal|illegal instruction)\b",
        re.I,
    ),
    re.compile(
        r"\b(?:exit(?:ed)?(?: with)?(?: (?:exit )?(?:code|status))?|exit status"
        r"|returned (?:a )?non-zero(?: exit)?(?: status| code)?|status code|error code|errno)"
        r"[ \t]*[:=]?[ \t]*-?[1-9]\d*\b",
        re.I,
    ),
    re.compile(r"\bHTTP(?:/[\d.]+)?[ \t]+[45]\d\d\b"),
    re.compile(r"\b(?:uncaught|unhandled) (?:\w+ ?){0,2}(?:error|exception|rejection)\b", re.I),
    re.compile(
        r"\b(?:throws?|threw|raises?|raised|shows?|says|prints?|printed|logs?|logged|got|get"
        r"|getting|fails? with|crash(?:es|ed)? with)(?: the| this| an?| following)?"
        r"(?: error| exception| message| output)?:[ \t]*\S",
        re.I,
    ),
)
_ERRORISH = re.compile(
    r"(?<![-\w.])(?:crash\w*|errors?|erroring|exceptions?|throws?|thrown|threw|traceback"
    r"|stack ?trace|fail(?:s|ed|ing|ure)?|segfaults?|segmentation|panics?|aborts?|aborted|broken"
    r"|doesn'?t work|does not work|not working|won'?t (?:start|run|open|load|build|compile)"
    r"|can'?t (?:start|run|open|load|build|compile))\b(?!-)",
    re.I,
)
#: "with no errors", "without any error message": the report says there is nothing to give.
_NO_ERROR = re.compile(
    r"\b(?:no|without(?: any)?|zero|not any|(?:does ?n[o']t|did ?n[o']t|never) (?:show|print|give"
    r"|throw|log|display)s?(?: any)?)(?: \w+)? (?:errors?|exceptions?|crash(?:es)?|messages?"
    r"|warnings?|output|logs?)\b",
    re.I,
)
_LOG_INFO = frozenset(
    {"log", "logs", "console", "output", "text", "txt", "stderr", "traceback", "pytb"}
)
#: Log lines: a timestamp or a level tag at the start.
_LOG_LINE = re.compile(
    r"^[ \t]*(?:\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\[?\d\d:\d\d:\d\d[.,\]]"
    r"|\[[ \t]*(?:info|warn(?:ing)?|debug|trace|error|fatal)\b)",
    re.M | re.I,
)
#: Checklist items ("- [x] I searched existing issues") are the template's, not the report's.
_CHECKLIST = re.compile(r"^[ \t]*[-*+][ \t]+\[[ xX]?\].*$", re.M)
_COMMAND = re.compile(
    r"^[ \t]*(?:\$[ \t]+)?(?:import|from|def|class|function|const|let|var|#include|pip3?|npm"
    r"|npx|yarn|pnpm|git|cd|python3?|node|docker|cargo|go|make|cmake|bazel|wget|curl|tar"
    r"|bitcoind|bitcoin-cli|\./[\w./-]+)\b",
    re.M,
)
_CODEISH = re.compile(r"[=(){};]")
#: The input lines of an interactive session (Python's REPL, IPython): what was typed is the
#: reproduction, even when the block also shows the traceback it printed.
_REPL_INPUT = re.compile(r"^[ \t]*(?:>>>|In \[\d+\]:)[ \t]+\S.*$", re.M)


@dataclass(frozen=True)
class BugEvidence:
    """What a bug report shows, each as the text that showed it ("" when absent)."""

    version: str = ""
    steps: str = ""
    error: str = ""
    code_block: str = ""
    #: The report speaks of an error, crash or failure (so its output is worth asking for).
    mentions_error: str = ""


def _is_placeholder(text: str, blocks: list[tuple[str, str]]) -> bool:
    """Whether a section holds nothing but what a template leaves (`blocks`: the fenced code
    its token lines stand for; an empty fence is nothing too)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _FENCE_LINE.match(line):
            continue
        token = _TOKEN_LINE.match(line)
        if token:
            if blocks[int(token.group(1))][1].strip():
                return False
            continue
        m = _LIST_ITEM.match(line)
        content = ((m.group("text") or "") if m else line).strip()
        if (
            content
            and not _PLACEHOLDER.match(content)
            and not _EXAMPLE_STEP.search(content)
            and not _KEY_ONLY.match(content)
        ):
            return False
    return True


def _extract_fences(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text with each fenced code block replaced by a token line, and the blocks as
    (info string, code). Done first, so a `# comment` in code is not taken for a heading."""
    blocks: list[tuple[str, str]] = []

    def token(m: re.Match[str]) -> str:
        blocks.append((m.group("info").strip().lower(), m.group("code")))
        return f"\n{_BLOCK_MARK}{len(blocks) - 1}{_BLOCK_MARK}\n"

    return _FENCE.sub(token, text), blocks


def _indented_blocks(prose: str) -> tuple[str, list[str]]:
    """(the prose without them, the indented code blocks): four-space lines after a blank line,
    outside lists."""
    blocks: list[str] = []
    kept: list[str] = []
    current: list[str] = []
    previous_blank, in_list = True, False
    for line in prose.splitlines():
        if not line.strip():
            previous_blank = True
            kept.append(line)
            continue
        indented = line.startswith(("    ", "\t"))
        if indented and not in_list and (previous_blank or current):
            current.append(line.strip())
        else:
            if current:
                blocks.append("\n".join(current))
                current = []
            kept.append(line)
            in_list = bool(_LIST_ITEM.match(line)) or (in_list and not previous_blank)
        previous_blank = False
    if current:
        blocks.append("\n".join(current))
    return "\n".join(kept), blocks


def _says_something(content: str, title: str) -> bool:
    """Not "1", ".", or the title pasted again."""
    words = re.findall(r"[^\W\d_]+", content.casefold())
    return bool(words) and words != re.findall(r"[^\W\d_]+", title.casefold())


def _is_patch(info: str, code: str) -> bool:
    return info in {"diff", "patch"} or _first_line(code).startswith(("diff --git", "--- a/"))


def _is_log(code: str) -> bool:
    return len(_LOG_LINE.findall(code)) >= 2


def _first(patterns: tuple[re.Pattern[str], ...], text: str) -> str:
    """The line of the first match of the first pattern that matches ("" if none does)."""
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            end = text.find("\n", m.end())
            return text[text.rfind("\n", 0, m.start()) + 1 : end if end >= 0 else None].strip()
    return ""


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def _numbered_steps(prose: str) -> str:
    """The first of two or more real numbered items (bullets are also used for "- OS: Windows"
    environment fields, so they count only under a steps heading)."""
    items = []
    for line in prose.splitlines():
        m = _LIST_ITEM.match(line)
        if not m or not m.group("marker")[0].isdigit():
            continue
        content = (m.group("text") or "").strip()
        if content and not _PLACEHOLDER.match(content) and not _EXAMPLE_STEP.search(content):
            items.append(content)
    return items[0] if len(items) >= 2 else ""


def bug_evidence(title: str, body: str) -> BugEvidence:
    """Read a bug report (title and Markdown body) for a version, steps to reproduce, the error
    output and code, ignoring what issue templates leave behind."""
    text, fenced = _extract_fences(_HINT.sub("", strip_hidden(body)))
    text = _CHECKLIST.sub("", text)
    # Sections: the text between headings. An empty one is dropped with its heading; a filled
    # one keeps it as prose ("When I run this:", "Steps to reproduce: 1. …").
    parts: list[tuple[str, str]] = []
    heading, start = "", 0
    for m in _HEADING.finditer(text):
        parts.append((heading, text[start : m.start()]))
        heading = next(g for g in (*m.group("h1", "h2", "h3", "h4"), "") if g is not None)
        start = m.end()
    parts.append((heading, text[start:]))

    # (heading, its text without code, its code blocks) of every filled section.
    sections: list[tuple[str, str, list[tuple[str, str]]]] = []
    for name, section in parts:
        if _is_placeholder(section, fenced):
            continue
        codes = [fenced[int(m.group(1))] for m in _TOKEN_LINE.finditer(section)]
        sections.append(
            (name.strip(), _TOKEN_LINE.sub("", section), [c for c in codes if c[1].strip()])
        )
    prose, indented = _indented_blocks("\n\n".join(f"{h}\n{s}" for h, s, _ in sections))
    blocks = [b for _, _, codes in sections for b in codes] + [("", c) for c in indented]
    code_text = "\n".join(code for _, code in blocks)

    version = _first(_VERSION_PATTERNS, f"{title}\n{prose}\n{code_text}")
    error = _first(_ERROR_EVIDENCE, f"{title}\n{prose}\n{code_text}")
    steps = (
        _first((_STEP_PHRASES, _REPRO_LINK), f"{title}\n{prose}")
        or _numbered_steps(prose)
        or _first((_SHELL_LINE,), f"{prose}\n{code_text}")
    )
    for info, code in blocks:
        # Output (a log, a traceback) is not a reproduction, even when it has parentheses.
        if info in _LOG_INFO or _first(_ERROR_EVIDENCE, code) or _is_log(code):
            error = error or _first_line(code)
            if not steps and _COMMAND.match(_first_line(code)):
                steps = _first_line(code)  # the commands that printed it
            if not steps and (typed := _REPL_INPUT.search(code)):
                steps = typed.group(0).strip()  # the session that printed it
        elif _is_patch(info, code):
            continue  # a proposed fix says nothing about how to reproduce
        elif not steps and (_CODEISH.search(code) or _COMMAND.search(code)):
            steps = _first_line(code)  # code to run is a reproduction
    # A filled template section says so even when its text matches no pattern above.
    for name, section, codes in sections:
        content = _first_line(section) or (_first_line(codes[0][1]) if codes else "")
        if (
            not steps
            and _STEPS_HEADING.search(name)
            and not _ERROR_HEADING.search(name)
            and _says_something(content, title)
        ):
            steps = content
        if not error and _ERROR_HEADING.search(name) and not re.search("expect", name, re.I):
            error = content
        if not version and _VERSION_HEADING.search(name) and re.search(r"\d", section):
            version = content
    mentions = _ERRORISH.search(_NO_ERROR.sub(" ", f"{title}\n{prose}"))
    return BugEvidence(
        version=version[:120],
        steps=steps[:120],
        error=error[:120],
        code_block=_first_line(blocks[0][1])[:120] if blocks else "",
        mentions_error=mentions.group(0) if mentions else "",
    )


def missing_information(issue_title: str, issue_body: str, issue_type: str) -> list[str]:
    """What a maintainer still needs before acting on a bug report, as requests to the
    reporter (`ASK_VERSION`, `ASK_STEPS`, `ASK_ERROR`, in that order); [] for any other type
    and for a complete report.

    The error output is asked for only when the report speaks of an error, crash or failure
    and shows none: a wrong colour or a misplaced button has no traceback to give.
    """
    if issue_type != "bug":
        return []
    found = bug_evidence(issue_title, issue_body)
    missing = []
    if not found.version:
        missing.append(ASK_VERSION)
    if not found.steps:
        missing.append(ASK_STEPS)
    if not found.error and found.mentions_error:
        missing.append(ASK_ERROR)
    return missing


# --- severity -----------------------------------------------------------------------------------

SEVERITIES = ("low", "medium", "high", "critical")


def severity_to_post(model_severity: str | None, measured: bool) -> str | None:
    """The severity to show and label, or None to say nothing about severity.

    `measured` must be True only when the model that produced `model_severity` was measured on
    severity and found good enough to decide it (the repository's `triage.severity_measured`,
    set by a maintainer after measuring their model). Unmeasured — the default, and the case of
    the embedded 270M model, which calls every issue `critical` — nothing is posted: no
    severity row in the comment and no severity label.
    """
    if not measured or model_severity not in SEVERITIES:
        return None
    return model_severity
