"""cargo test (libtest): failing tests, their panic location and assertion message.

Recognises:

- the captured-output block of a failing test, ``---- tests::adds stdout ----``, and the panic
  inside it, ``thread 'tests::adds' (15802) panicked at src/lib.rs:10:9:`` (the thread id is
  printed by recent Rust, 1.95 here; older ``panicked at 'msg', src/lib.rs:10:9`` too) followed
  by the message (``assertion `left == right` failed`` / ``  left: 4`` / `` right: 5``):
  kind "test", test_id = the test's path, path/line = the panic location, log_line = the
  panic line (the header when the block has no panic line);
- a panic outside such a block (``cargo test -- --nocapture``): the thread's name is the test;
- ``test tests::adds ... FAILED`` for a test with neither (e.g. a ``#[should_panic]`` test
  that did not panic, or a run cut short). The ``test result: FAILED. 3 passed; 1 failed``
  summary is not a failure of its own: a ``... FAILED`` line always precedes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_HEADER = re.compile(r"^---- (.+) stdout ----$")
_PANIC = re.compile(
    r"^thread '([^']*)'(?: \(\d+\))? panicked at (?:'(.*)', )?(.+?):(\d+):(\d+):?\s*$"
)
_FAILED = re.compile(r"^test (.+) \.\.\. FAILED\s*$")
_MESSAGE_END = ("note: ", "stack backtrace:", "---- ", "failures:", "test result:")


def _panic_message(lines: Sequence[str], i: int, inline: str | None) -> str:
    if inline:
        return inline
    parts: list[str] = []
    for j in range(i + 1, min(len(lines), i + 8)):
        text = lines[j]
        if not text.strip() or text.startswith(_MESSAGE_END):
            break
        parts.append(text.strip())
    return "; ".join(parts)


class CargoTestParser:
    name = "cargo-test"
    ecosystem = "rust"
    needles = (" stdout ----", " panicked at ", " ... FAILED")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        done: set[str] = set()
        claimed: set[int] = set()  # panic lines read as part of a stdout block
        failed_lines: list[tuple[int, str]] = []
        for i in hits:
            text = lines[i]
            header = _HEADER.match(text)
            if header:
                test_id = header.group(1)
                failure = self._block(lines, i, test_id, claimed)
                if test_id not in done:
                    done.add(test_id)
                    out.append(failure)
                continue
            if i in claimed:
                continue
            panic = _PANIC.match(text)
            if panic:
                test_id = panic.group(1)
                if test_id in done or test_id in ("main", "<unnamed>"):
                    continue
                done.add(test_id)
                out.append(self._panic_failure(lines, i, test_id, panic))
                continue
            failed = _FAILED.match(text)
            if failed:
                failed_lines.append((i, failed.group(1)))
        for i, test_id in failed_lines:
            if test_id not in done:
                done.add(test_id)
                out.append(
                    Failure(
                        kind="test",
                        tool=self.name,
                        message=clip(lines[i]),
                        test_id=test_id,
                        log_line=i,
                    )
                )
        return out

    def _block(self, lines: Sequence[str], i: int, test_id: str, claimed: set[int]) -> Failure:
        end = min(len(lines), i + 1 + MAX_CONTEXT)
        for j in range(i + 1, end):
            text = lines[j]
            if _HEADER.match(text) or text.startswith(("failures:", "test result:")):
                break
            panic = _PANIC.match(text)
            if panic:
                claimed.add(j)
                return self._panic_failure(lines, j, test_id, panic)
        return Failure(
            kind="test", tool=self.name, message=clip(lines[i]), test_id=test_id, log_line=i
        )

    def _panic_failure(
        self, lines: Sequence[str], i: int, test_id: str, panic: re.Match[str]
    ) -> Failure:
        message = _panic_message(lines, i, panic.group(2))
        return Failure(
            kind="test",
            tool=self.name,
            message=clip(f"{test_id}: {message}" if message else lines[i]),
            test_id=test_id,
            path=rel_path(panic.group(3)),
            line=int(panic.group(4)),
            log_line=i,
        )


PARSER = CargoTestParser()
