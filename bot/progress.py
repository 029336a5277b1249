"""Progress on the terminal for long local runs (`loopwright run fix`): the phase the loop is
in, as it happens, on stderr so `--json` output stays clean. A live spinner with the elapsed
time on a TTY (rich), plain timestamped lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.status import Status


class TerminalProgress:
    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False)
        self.live = self.console.is_terminal if live is None else live
        self.started = time.monotonic()
        self._status: Status | None = None
        self._last = ""

    def __call__(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        elapsed = time.monotonic() - self.started
        if self.live:
            if self._status is None:
                self._status = self.console.status(text)
                self._status.start()
            else:
                self._status.update(text)
            self.console.log(text)
        else:
            print(f"[{elapsed:6.1f}s] {text}", file=self.stream, flush=True)

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
