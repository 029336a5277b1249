"""The operator's dashboard, served by `loopwright serve` under `/ui` (server-rendered pages).

Pages: runs (filters: repo, loop, state, exit, date), a run's chart of steps (inputs, outputs,
verdicts, durations, tokens, cost; the diff it kept, why the other attempts were reverted, the
test tables), the queue (waiting, running with the lease owner, dead with the last error and a
retry button), and spend per day by repo, loop or model. Sign-in is the App's GitHub OAuth
(`bot.ui.auth`); a user sees only repositories the App is installed on that they can write to,
and nothing at all before signing in. Every text shown is redacted again on the way out.
"""

from bot.ui.views import setup_ui

__all__ = ["setup_ui"]
