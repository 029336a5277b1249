"""Text hygiene at the two trust boundaries: untrusted text going into prompts, and our own text
going out to GitHub."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

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

_TOKEN_PATTERNS = [
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
    re.compile(r"\bv1\.[0-9a-f]{40}\b"),  # legacy installation tokens
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b"),  # OpenAI/Anthropic-style keys
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b"),  # Slack
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),  # JWTs
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
    ),
    re.compile(r"(?i)(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
]
REDACTED = "[REDACTED]"


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Replace token-like strings and any known secret value in text we are about to post."""
    for secret in sorted((s for s in known_secrets if len(s) >= 8), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text
