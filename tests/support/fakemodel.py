"""A scripted OpenAI-compatible chat-completions server on loopback.

Scripts are keyed by step (the `X-Loopwright-Step` header our client sends), not by call order,
so a test says "the triage step answers X" and stays true when other steps are added.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Responder = Callable[[dict[str, Any]], str | Awaitable[str]]
Answer = str | Responder | dict[str, Any]


@dataclass
class ModelCall:
    step: str
    model: str
    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None
    headers: dict[str, str]


@dataclass
class FakeModel:
    """`script(step, *answers)`: answers are consumed in order; the last one repeats.

    An answer is text (the message content), a callable of the request JSON returning text,
    or `{"status": 500, ...}` to answer with an HTTP error.
    """

    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[ModelCall] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def script(self, step: str, *answers: Answer) -> None:
        self.scripts[step] = list(answers)

    def calls_for(self, step: str) -> list[ModelCall]:
        return [c for c in self.calls if c.step == step]

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        step = request.headers.get("X-Loopwright-Step", "")
        self.calls.append(
            ModelCall(
                step,
                body.get("model", ""),
                body.get("messages", []),
                body.get("response_format"),
                dict(request.headers),
            )
        )
        answers = self.scripts.get(step)
        if not answers:
            return web.json_response(
                {"error": {"message": f"no script for step {step!r}", "type": "test_error"}},
                status=400,
            )
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, dict):
            return web.json_response(
                {"error": {"message": "scripted failure"}}, status=int(answer.get("status", 500))
            )
        content = answer(body) if callable(answer) else answer
        if inspect.isawaitable(content):
            # An async responder can act mid-call (e.g. deliver a webhook) before answering.
            content = await content
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
        )

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@asynccontextmanager
async def running_model() -> AsyncIterator[FakeModel]:
    fake = FakeModel()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def triage_answer(
    type_: str = "bug",
    severity: str = "medium",
    area: str = "none",
    missing: list[str] | None = None,
    summary: str = "The widget crashes on start",
) -> str:
    return json.dumps(
        {
            "summary": summary,
            "type": type_,
            "severity": severity,
            "area": area,
            "missing_information": missing or [],
        }
    )
