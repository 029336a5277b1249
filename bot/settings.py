"""Process-wide settings, read from `LOOPWRIGHT_*` environment variables.

Nothing is read at import time: call `load_settings()` where a command starts. Settings that
only some commands need (the App id, its key, the webhook secret) are optional here and demanded
by `Settings.require(...)`, so `loopwright run triage` works with no GitHub App at all, while
`loopwright serve` fails with one line naming the missing variable.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "LOOPWRIGHT_"

#: The loop steps that call a model; each has its own model list (the escalation order).
MODEL_STEPS = ("triage", "localize", "write_test", "patch", "summarize")

#: The name under which the embedded llama.cpp server serves its model.
EMBEDDED_MODEL_NAME = "gemma-3-270m-it-q4_k_m"


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line meant for the operator."""


class Price(BaseModel):
    """US dollars per million tokens."""

    prompt: float = 0.0
    completion: float = 0.0


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "loopwright"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", case_sensitive=False, frozen=True
    )

    app_id: int | None = None
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    #: Where repositories are cloned from over smart HTTP (`{url}/{owner}/{repo}.git`).
    git_base_url: str = "https://github.com"

    data_dir: Path = Field(default_factory=_default_data_dir)
    #: Empty means an SQLite file `loopwright.db` in `data_dir`.
    database_url: str = ""

    #: Empty means: start the embedded llama.cpp model on loopback.
    model_base_url: str = ""
    model_api_key: SecretStr = SecretStr("")
    #: Used for any step whose own list is empty.
    model_default: str = EMBEDDED_MODEL_NAME
    #: Comma-separated model names per step, first tried first; escalation goes left to right.
    model_triage: str = ""
    model_localize: str = ""
    model_write_test: str = ""
    model_patch: str = ""
    model_summarize: str = ""
    model_timeout_seconds: float = 120.0
    #: How to ask for JSON-schema output: "openai" (`json_schema`), "llama" (llama.cpp's
    #: `json_object` + `schema`), or "auto" (llama for the embedded model, else openai).
    model_schema_style: Literal["auto", "openai", "llama"] = "auto"
    #: JSON object: model name -> {"prompt": $/1M tokens, "completion": $/1M tokens}.
    prices: dict[str, Price] = Field(default_factory=dict)
    #: Path to a GGUF file for the embedded model; empty = the one the `local` extra ships.
    local_model_path: str = ""

    worker_concurrency: int = 2
    job_max_attempts: int = 4
    job_lease_seconds: float = 120.0
    job_backoff_seconds: float = 5.0
    github_max_tries: int = 5
    github_max_wait_seconds: float = 60.0
    #: On SIGTERM/SIGINT: how long running jobs may take to finish before they are interrupted
    #: and handed back to the queue (without spending an attempt).
    shutdown_grace_seconds: float = 30.0
    #: How often a worker process asks GitHub for failed deliveries we never stored and has
    #: them redelivered (0 = never; `loopwright redeliver` does it by hand).
    redeliver_interval_seconds: float = 600.0
    #: How far back that reconciliation looks.
    redeliver_window_seconds: float = 7200.0

    #: Hard spend caps in US dollars over rolling windows (a day is 24 h, a month 30 days),
    #: summed from the recorded model calls; 0 = no cap. A repository's
    #: `.github/loopwright.yml` may set lower ones, never higher.
    cost_cap_repo_day_usd: float = Field(default=0.0, ge=0)
    cost_cap_repo_month_usd: float = Field(default=0.0, ge=0)
    cost_cap_installation_day_usd: float = Field(default=0.0, ge=0)
    cost_cap_installation_month_usd: float = Field(default=0.0, ge=0)

    #: "bwrap" runs untrusted code under bubblewrap; "none" is for local development only.
    sandbox: Literal["bwrap", "none"] = "bwrap"
    #: The unprivileged user sandboxed commands run as when loopwright runs as root (the
    #: process limit does not bind root). Empty: refuse to sandbox as root.
    sandbox_user: str | None = None

    #: How log lines look on stderr: "text" (one readable line) or "json" (one JSON object per
    #: line, with the run id, job id, repo and step of the job it was logged in).
    log_format: Literal["text", "json"] = "text"
    # The dashboard (`/ui`): sign-in through the App's OAuth (user-to-server) credentials,
    # which `loopwright setup` writes. Without them `/ui` answers 503 with what to configure.
    github_client_id: str = ""
    github_client_secret: SecretStr | None = None
    # Signs the dashboard's session cookies; unset, a random key per process (sign in again
    # after a restart).
    ui_session_secret: SecretStr | None = None
    # The dashboard's public address, for the OAuth redirect (default: the request's own).
    ui_base_url: str = ""

    def require(self, *names: str) -> None:
        """Fail with one line per the first missing setting among `names`."""
        for name in names:
            if name == "private_key":
                if self.private_key is None and self.private_key_file is None:
                    raise SettingsError(
                        f"{ENV_PREFIX}PRIVATE_KEY or {ENV_PREFIX}PRIVATE_KEY_FILE is not set: "
                        "the GitHub App's private key (PEM) is needed"
                    )
                continue
            if getattr(self, name) in (None, ""):
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} is not set")

    def private_key_pem(self) -> str:
        self.require("private_key")
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        assert self.private_key_file is not None
        try:
            return self.private_key_file.read_text()
        except OSError as exc:
            raise SettingsError(
                f"{ENV_PREFIX}PRIVATE_KEY_FILE={self.private_key_file} cannot be read: "
                f"{exc.strerror}"
            ) from exc

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'loopwright.db'}"

    def models_for(self, step: str) -> list[str]:
        """The escalation list of models for one step."""
        if step not in MODEL_STEPS:
            raise ValueError(f"unknown model step {step!r}")
        raw: str = getattr(self, f"model_{step}")
        names = [part.strip() for part in raw.split(",") if part.strip()]
        return names or [self.model_default]

    def price_of(self, model: str) -> Price:
        return self.prices.get(model, Price())

    def secret_values(self) -> list[str]:
        """Every configured secret, for redaction of outbound text."""
        values = []
        for secret in (
            self.private_key,
            self.webhook_secret,
            self.model_api_key,
            self.github_client_secret,
            self.ui_session_secret,
        ):
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        if self.private_key is None and self.private_key_file is not None:
            # The key from its file too (the PEM pattern catches the block, this the exact text).
            with contextlib.suppress(OSError):
                values.append(self.private_key_file.read_text())
        return values


def load_settings(**overrides: object) -> Settings:
    """Read the environment; invalid values become one `SettingsError` line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
        raise SettingsError(f"{loc} is invalid: {err['msg']}") from None
