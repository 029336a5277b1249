"""What the tests share: the fakes (GitHub, the model, git over HTTP), the end-to-end stacks,
the fixture projects and corpora.  Test modules import from here, never from each other.

- `fakegithub/`: the loopback GitHub REST fake (and `fakegithub.hooks`, the App's delivery log);
- `fakemodel`: the scripted OpenAI-compatible model;
- `githttp`: git smart HTTP on loopback, bare repositories;
- `webhooks`: real payload fixtures, signing, delivery headers;
- `e2e`, `ci_stacks`, `triage_repo`, `cli`: whole-stack harnesses and their seeds;
- `fixrepo`, `cirepo`, `realbugs`, `adversarial`: fixture projects and corpora;
- `cilog_fixtures`, `cilog_corpus`: real CI logs;
- `sandbox_user`: the unprivileged user the sandbox tests run as;
- `calc_workspace`: the two-function workspace the engine tests keep and revert on.
"""

from __future__ import annotations

from pathlib import Path

#: tests/fixtures: payloads, operations.json, corpora.
FIXTURES = Path(__file__).parent.parent / "fixtures"
