"""Text hygiene at the two trust boundaries: untrusted text going into prompts, and our own text
going out to GitHub."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# Zero-width and bidi controls hide instructions from a human reviewer while the model still
# reads them; tags (U+E0000 block) can smuggle whole ASCII strings invisibly.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]"
)
_DETAILS_TAGS = re.compile(r"</?(?:details|summary|sub|sup|picture|source|img)[^>]*>", re.I)
_BLANK_RUNS = re.compile(r"\n{3,}")

#: A rough, conservative tokens-per-character ratio for budgeting before the model sees text.
CHARS_PER_TOKEN = 3.5


def strip_hidden(text: str) -> str:
    """Remove HTML comments, invisible characters and presentational tags that hide text."""
    text = _HTML_COMMENT.sub("", text)
    text = _INVISIBLE.sub("", text)
    text = _DETAILS_TAGS.sub("", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return _BLANK_RUNS.sub("\n\n", text).strip()


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Keep the head and a little of the tail; stack traces often end with the useful line."""
    max_chars = int(max_tokens * CHARS_PER_TOKEN)
    if len(text) <= max_chars:
        return text, False
    tail = max_chars // 5
    head = max_chars - tail
    cut = len(text) - head - tail
    return f"{text[:head]}\n[… {cut} characters cut …]\n{text[-tail:]}", True


def untrusted_block(label: str, text: str) -> str:
    """Wrap untrusted text in a delimited block the model is told never to obey.

    The closing delimiter cannot be forged from inside: any occurrence of the fence in the text
    is defused first.
    """
    fence = f"UNTRUSTED-{label.upper()}"
    safe = text.replace(fence, fence.replace("-", "_"))
    return f"<<<{fence}\n{safe}\n{fence}>>>"


# --- outbound redaction -------------------------------------------------------------------------

_TOKEN_SOURCES = [
    r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
    r"\bv1\.[0-9a-f]{40}\b",  # legacy installation tokens
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b",  # OpenAI/Anthropic-style keys
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b",  # Slack
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bglpat-[A-Za-z0-9_\-]{20,}\b",
    r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWTs
    r"(?s:-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z))",
    r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",  # user:password@ in URLs
]
#: Every token shape in one compiled alternation: one scan of the text, not one per shape.
_TOKENS = re.compile("|".join(f"(?:{src})" for src in _TOKEN_SOURCES))
REDACTED = "[REDACTED]"
#: Shorter configured values are not redacted: they would blank out ordinary words.
MIN_SECRET_LENGTH = 8


def _secret_forms(secret: str) -> set[str]:
    """A secret as it may appear in text: verbatim, stripped (a PEM file's final newline), and
    escaped inside a JSON string (a PEM's newlines, in a stored prompt)."""
    forms = {secret, secret.strip()}
    forms |= {json.dumps(f)[1:-1] for f in list(forms)}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces token-like strings and the known secrets with `[REDACTED]`; compiled once.

    Every outbound channel goes through one: comments, CLI output (JSON and text), logs
    (messages, arguments, tracebacks) and the stored runs, steps and job errors.
    """

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in known_secrets:
            if secret:
                forms |= _secret_forms(secret)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self._known = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        return _TOKENS.sub(REDACTED, text)

    def data(self, value: Any) -> Any:
        """`value` with every string in it redacted, at any depth (dict keys too): a JSON
        document, a row, a log record's extra fields. Other values are returned as they are."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.data(v) for v in value)
        return value


@functools.lru_cache(maxsize=16)
def _cached_redactor(known_secrets: tuple[str, ...]) -> Redactor:
    return Redactor(known_secrets)


def redactor(known_secrets: Iterable[str] = ()) -> Redactor:
    """The (cached) `Redactor` for these secrets."""
    return _cached_redactor(tuple(known_secrets))


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Replace token-like strings and any known secret value in text we are about to post."""
    return redactor(known_secrets)(text)


def redact_data(value: Any, known_secrets: Iterable[str] = ()) -> Any:
    """Every string in `value` (a JSON document, at any depth) redacted; see `Redactor.data`."""
    return redactor(known_secrets).data(value)
