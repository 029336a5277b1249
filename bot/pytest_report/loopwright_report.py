"""loopwright's own pytest reporter, loaded with `-p loopwright_report` inside the sandbox.

It is the channel test outcomes come back through, and it is built so that the code under test
can neither find nor forge it: the descriptor, named in an environment variable this module
removes the moment pytest imports it (before any conftest or project module), is a socket whose
other end only loopwright holds; a one-time nonce is read from it here, before the project's code
runs, and exactly one record (with the nonce) is written back when the session finishes. No
record, two records, a wrong nonce or an exit status that disagrees with the record voids the
run (bot/testresults.py).

This file runs under the project's interpreter and pytest, whatever their versions: plain
Python 3.6 syntax with no annotations (mypy skips it), only hooks pytest has had for years, and
no imports from loopwright.
"""

import json
import os

_ENV = "LWR_REPORT_CHANNEL"
_NONCE_BYTES = 32
_MAX_MESSAGE = 4000
_MAX_OUTPUT = 3000
_SEVERITY = {"error": 3, "failed": 2, "skipped": 1, "passed": 0}


def _take_channel():
    raw = os.environ.pop(_ENV, "")
    if not raw.isdigit():
        return None
    fd = int(raw)
    try:
        os.set_inheritable(fd, False)  # tests that spawn processes do not hand it on
        # The nonce comes through the channel itself, never the environment (which stays
        # readable in /proc/self/environ after this module removed the variable).
        nonce = b""
        while len(nonce) < _NONCE_BYTES:
            chunk = os.read(fd, _NONCE_BYTES - len(nonce))
            if not chunk:
                return None
            nonce += chunk
    except OSError:
        return None
    return fd, nonce.decode("ascii", "replace")


class _Reporter:
    def __init__(self, fd, nonce):
        self._fd = fd
        self._nonce = nonce
        self._outcomes = {}
        self._written = False

    def _put(self, nodeid, outcome, message, output, duration):
        known = self._outcomes.get(nodeid)
        if known is not None and _SEVERITY[known["outcome"]] >= _SEVERITY[outcome]:
            if outcome == "passed":
                known["duration_s"] += duration
            return
        self._outcomes[nodeid] = {
            "test_id": nodeid,
            "outcome": outcome,
            "message": _clip(message),
            "duration_s": duration + (known["duration_s"] if known else 0.0),
            "output": output[-_MAX_OUTPUT:],
        }

    def pytest_runtest_logreport(self, report):
        when = getattr(report, "when", "call")
        duration = float(getattr(report, "duration", 0.0) or 0.0)
        if report.passed:
            if when == "call" or report.nodeid not in self._outcomes:
                self._put(report.nodeid, "passed", "", "", duration)
            return
        if report.skipped:
            reason = getattr(report, "wasxfail", None)
            self._put(report.nodeid, "skipped", reason or _skip_reason(report), "", duration)
            return
        text = _longrepr_text(report)
        crash = _crash_message(report) or text
        if when == "call":
            outcome, message = "failed", crash
        else:
            outcome, message = "error", f'failed on {when} with "{crash}"'
        if text and text != message:
            message = message + "\n" + text
        self._put(report.nodeid, outcome, message, _captured(report), duration)

    def pytest_collectreport(self, report):
        if report.failed:
            message = "collection failure\n" + _longrepr_text(report)
            self._put(report.nodeid or "(collection)", "error", message, "", 0.0)
        elif report.skipped and report.nodeid:
            self._put(report.nodeid, "skipped", _skip_reason(report), "", 0.0)

    def pytest_sessionfinish(self, session, exitstatus):
        if self._written:
            return
        self._written = True
        record = {
            "nonce": self._nonce,
            "exitstatus": int(exitstatus),
            "collected": int(getattr(session, "testscollected", 0) or 0),
            "outcomes": list(self._outcomes.values()),
        }
        data = (json.dumps(record) + "\n").encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            pass
        finally:
            try:
                os.close(self._fd)
            except OSError:
                pass


def _clip(message):
    if len(message) <= _MAX_MESSAGE:
        return message
    head = _MAX_MESSAGE // 4
    return message[:head] + "\n[…]\n" + message[-(_MAX_MESSAGE - head - 5) :]


def _longrepr_text(report):
    text = getattr(report, "longreprtext", None)
    if text is None:
        text = str(report.longrepr) if report.longrepr is not None else ""
    return text.strip()


def _crash_message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    return getattr(crash, "message", "") or ""


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return _longrepr_text(report)


def _captured(report):
    parts = []
    for title, content in getattr(report, "sections", []) or []:
        if content and content.strip():
            parts.append(f"--- {title} ---\n{content.strip()}")
    return "\n".join(parts)


def pytest_configure(config):
    channel = _CHANNEL[0]
    if channel is not None and not config.pluginmanager.has_plugin("loopwright-reporter"):
        config.pluginmanager.register(_Reporter(*channel), "loopwright-reporter")
        _CHANNEL[0] = None  # one session per channel (an in-process pytester run gets none)


_CHANNEL = [_take_channel()]
