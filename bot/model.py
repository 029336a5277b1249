"""Calls to an OpenAI-compatible chat model, with structured output, usage and cost accounting.

The model never holds a credential and never chooses an action outside the schema it is given;
what it returns is data, validated with pydantic before anything uses it.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import openai
from pydantic import BaseModel, ValidationError

from bot import logs
from bot import metrics as mx
from bot.settings import Settings
from bot.store import StepRecord

T = TypeVar("T", bound=BaseModel)
SchemaStyle = Literal["openai", "llama"]
Recorder = Callable[[StepRecord], Awaitable[None]]

log = logging.getLogger("loopwright.model")

#: A header our scripted test model uses to pick the script for a step; real servers ignore it.
STEP_HEADER = "X-Loopwright-Step"


class ModelError(Exception):
    """Base of the typed model failures a loop turns into an exit reason."""


class ModelOutputError(ModelError):
    """The model's output failed validation on every allowed attempt."""


class ModelUnavailable(ModelError):
    """The model endpoint could not be reached or kept erroring."""


class CostCapReached(ModelError):
    """A spend cap (per repository or installation, over a rolling window) is reached: the call
    was refused before it was made. Not an output or endpoint failure: loops end `cost_cap`.

    `scope` is "repository" or "installation", `window` "day" or "month"; `spent` is what the
    recorded model calls cost in the window plus what calls in flight have reserved; `frees_at`
    (epoch seconds, None if unknown) is about when enough of it leaves the window for a call.
    """

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        subject: str,
        window: str,
        cap: float,
        spent: float,
        source: str = "",
        frees_at: float | None = None,
    ) -> None:
        super().__init__(message)
        self.scope = scope
        self.subject = subject
        self.window = window
        self.cap = cap
        self.spent = spent
        self.source = source
        self.frees_at = frees_at


class CallGuard(Protocol):
    """Checked around every model request: `before_call` refuses it (raising
    `CostCapReached`) or admits it and returns a token; `after_call(token)` runs once the
    request has ended and its step record, if any, is written (also when it failed)."""

    async def before_call(self, *, step: str, model: str, estimate: float) -> object: ...

    async def after_call(self, token: object) -> None: ...


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost

    def copy(self) -> Usage:
        return Usage(self.calls, self.prompt_tokens, self.completion_tokens, self.cost)

    def minus(self, earlier: Usage) -> Usage:
        """What was spent since `earlier` (a copy taken before)."""
        return Usage(
            self.calls - earlier.calls,
            self.prompt_tokens - earlier.prompt_tokens,
            self.completion_tokens - earlier.completion_tokens,
            self.cost - earlier.cost,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 6),
        }


@dataclass
class Reply(Generic[T]):
    value: T
    model: str
    usage: Usage
    attempts: int
    raw: str = field(repr=False, default="")


def extract_json(text: str) -> Any:
    """Parse a JSON object from a reply, tolerating a Markdown fence around it."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    start, end = stripped.find("{"), stripped.rfind("}")
    if start == -1 or end < start:
        raise ValueError("no JSON object in the reply")
    # strict=False: llama.cpp's schema grammar lets raw newlines into JSON strings, and a retry
    # at temperature 0 repeats them byte for byte; they are harmless in a summary.
    return json.loads(stripped[start : end + 1], strict=False)


class ModelClient:
    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str,
        api_key: str,
        schema_style: SchemaStyle = "openai",
        max_attempts: int = 2,
    ) -> None:
        self.settings = settings
        self.schema_style = schema_style
        self.max_attempts = max_attempts
        #: Checked before every request (the spend caps of one run); None: nothing to check.
        self.guard: CallGuard | None = None
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=settings.model_timeout_seconds,
            max_retries=2,
        )

    async def close(self) -> None:
        """Close the HTTP client (shared with every `with_guard` copy: close the original)."""
        await self.client.close()

    def with_guard(self, guard: CallGuard | None) -> ModelClient:
        """A client for one run: the same endpoint and HTTP connection pool, with `guard`
        checked before each request this copy makes."""
        clone = copy.copy(self)
        clone.guard = guard
        return clone

    @property
    def max_requests(self) -> int:
        """HTTP requests one attempt may make at most (the openai client's own retries)."""
        return int(self.client.max_retries) + 1

    def _response_format(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        if self.schema_style == "llama":
            # llama-cpp-python's server compiles this into a grammar, so the reply is
            # constrained token by token rather than merely asked for.
            return {"type": "json_object", "schema": schema}
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": False},
        }

    def cost_of(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.settings.price_of(model)
        return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1e6

    def estimate_cost(self, model: str, messages: list[dict[str, str]], max_tokens: int) -> float:
        """An upper estimate of one request's cost, before it is made: three characters per
        prompt token (tokenizers average nearer four) and the whole reply limit."""
        chars = sum(len(m.get("content") or "") for m in messages)
        return self.cost_of(model, -(-chars // 3), max_tokens)

    async def structured(
        self,
        step: str,
        messages: list[dict[str, str]],
        output_type: type[T],
        *,
        schema: dict[str, Any] | None = None,
        record: Recorder | None = None,
        max_tokens: int = 400,
        models: list[str] | None = None,
    ) -> Reply[T]:
        """One call returning `output_type`; an invalid reply gets one corrective retry.

        The retry goes to the next model of the step's escalation list when there is one: an
        invalid reply is a verified failure of the smaller model. `models` overrides the list
        (a loop that escalates after failed attempts passes the rest of it).
        """
        # Lines logged during the call (here, by the guard, the recorder) name the step.
        with logs.context(step=step):
            return await self._structured(
                step, messages, output_type, schema, record, max_tokens, models
            )

    async def _structured(
        self,
        step: str,
        messages: list[dict[str, str]],
        output_type: type[T],
        schema: dict[str, Any] | None,
        record: Recorder | None,
        max_tokens: int,
        models: list[str] | None,
    ) -> Reply[T]:
        models = models or self.settings.models_for(step)
        schema = schema or output_type.model_json_schema()
        usage = Usage()
        convo = list(messages)
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            model = models[min(attempt - 1, len(models) - 1)]
            token: object = None
            if self.guard is not None:
                # Refused here (CostCapReached) the request is never made.
                estimate = self.estimate_cost(model, convo, max_tokens)
                token = await self.guard.before_call(step=step, model=model, estimate=estimate)
            try:
                reply = await self._attempt(
                    step, model, convo, output_type, schema, max_tokens, record, usage
                )
            finally:
                if self.guard is not None:
                    # After the step record: the call's cost is counted by one or the other.
                    await self.guard.after_call(token)
            value, text, last_error = reply
            if value is None:
                convo = [
                    *messages,
                    {"role": "assistant", "content": text[:2000]},
                    {
                        "role": "user",
                        "content": f"That reply was invalid ({last_error}). Answer again with only "
                        "a JSON object that matches the schema.",
                    },
                ]
                continue
            return Reply(value=value, model=model, usage=usage, attempts=attempt, raw=text)
        raise ModelOutputError(
            f"{step}: invalid output after {self.max_attempts} attempts ({last_error})"
        )

    async def _attempt(
        self,
        step: str,
        model: str,
        convo: list[dict[str, str]],
        output_type: type[T],
        schema: dict[str, Any],
        max_tokens: int,
        record: Recorder | None,
        usage: Usage,
    ) -> tuple[T | None, str, str]:
        """One request, recorded and added to `usage`: (the validated value or None, the reply
        text, why it is invalid)."""
        started = time.perf_counter()
        try:
            request: dict[str, Any] = {
                "model": model,
                "messages": convo,
                "temperature": 0,
                "max_tokens": max_tokens,
                "response_format": self._response_format(step, schema),
                "extra_headers": {STEP_HEADER: step},
            }
            resp = await self.client.chat.completions.create(**request)
        except openai.APIError as exc:
            mx.observe_model_call(logs.current("loop"), step, model, "unavailable")
            if record:
                await record(
                    StepRecord(
                        name=step,
                        kind="model",
                        verdict="unavailable",
                        model=model,
                        input=_render(convo),
                        messages=list(convo),
                        output=f"{type(exc).__name__}: {exc}",
                        duration_ms=(time.perf_counter() - started) * 1000,
                    )
                )
            raise ModelUnavailable(f"{step}: {type(exc).__name__}: {exc}") from exc
        ms = (time.perf_counter() - started) * 1000
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        pt = resp.usage.prompt_tokens if resp.usage else 0
        ct = resp.usage.completion_tokens if resp.usage else 0
        call = Usage(1, pt, ct, self.cost_of(model, pt, ct))
        usage.add(call)
        value: T | None = None
        error = ""
        try:
            value = output_type.model_validate(extract_json(text))
        except (ValueError, ValidationError) as exc:
            error = _short_error(exc)
        log.debug(
            "model %s answered in %.0f ms: %d+%d tokens, %s",
            model,
            ms,
            pt,
            ct,
            "valid" if value is not None else f"invalid ({error})",
        )
        mx.observe_model_call(
            logs.current("loop"),
            step,
            model,
            "valid" if value is not None else "invalid",
            pt,
            ct,
            call.cost,
        )
        if record:
            await record(
                StepRecord(
                    name=step,
                    kind="model",
                    verdict="valid" if value is not None else f"invalid: {error}",
                    model=model,
                    input=_render(convo),
                    messages=list(convo),
                    output=text,
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    cost=call.cost,
                    duration_ms=ms,
                )
            )
        return value, text, error


def _render(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "value"
        return f"{loc}: {err['msg']}"
    return str(exc)[:200]
