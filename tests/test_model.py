"""The model client against the scripted OpenAI-compatible server (the real `openai` client)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from bot.model import ModelClient, ModelOutputError, ModelUnavailable
from bot.settings import load_settings
from bot.store import StepRecord
from tests.support.fakemodel import FakeModel


class Answer(BaseModel):
    verdict: str
    score: int


def client(fake: FakeModel, **settings: object) -> ModelClient:
    s = load_settings(model_triage="small,big", **settings)
    return ModelClient(s, base_url=fake.url, api_key="k")


async def test_valid_reply_is_parsed_and_costed(fake_model: FakeModel) -> None:
    fake_model.script("triage", '```json\n{"verdict": "ok", "score": 3}\n```')
    c = client(fake_model, prices={"small": {"prompt": 1.0, "completion": 2.0}})
    steps: list[StepRecord] = []

    async def record(step: StepRecord) -> None:
        steps.append(step)

    reply = await c.structured("triage", [{"role": "user", "content": "hi"}], Answer, record=record)
    await c.close()
    assert reply.value == Answer(verdict="ok", score=3) and reply.model == "small"
    u = reply.usage
    assert u.calls == 1 and u.prompt_tokens > 0
    assert u.cost == pytest.approx((u.prompt_tokens * 1 + u.completion_tokens * 2) / 1e6)
    [call] = fake_model.calls
    assert call.response_format and call.response_format["type"] == "json_schema"
    assert [s.verdict for s in steps] == ["valid"]


async def test_invalid_reply_is_retried_on_the_next_model(fake_model: FakeModel) -> None:
    fake_model.script("triage", "I think it is fine", '{"verdict": "ok", "score": 1}')
    c = client(fake_model)
    reply = await c.structured("triage", [{"role": "user", "content": "hi"}], Answer)
    await c.close()
    assert reply.attempts == 2 and reply.usage.calls == 2
    assert [call.model for call in fake_model.calls] == ["small", "big"]
    assert "invalid" in fake_model.calls[1].messages[-1]["content"]


async def test_garbage_twice_is_a_typed_failure(fake_model: FakeModel) -> None:
    fake_model.script("triage", '{"verdict": "ok", "score": "high"}')
    c = client(fake_model)
    with pytest.raises(ModelOutputError, match="score"):
        await c.structured("triage", [{"role": "user", "content": "hi"}], Answer)
    await c.close()
    assert len(fake_model.calls) == 2


async def test_server_errors_become_model_unavailable(fake_model: FakeModel) -> None:
    fake_model.script("triage", {"status": 500})
    c = client(fake_model)
    c.client = c.client.with_options(max_retries=0)
    with pytest.raises(ModelUnavailable):
        await c.structured("triage", [{"role": "user", "content": "hi"}], Answer)
    await c.close()


async def test_llama_style_response_format(fake_model: FakeModel) -> None:
    fake_model.script("triage", '{"verdict": "ok", "score": 1}')
    s = load_settings()
    c = ModelClient(s, base_url=fake_model.url, api_key="", schema_style="llama")
    await c.structured("triage", [{"role": "user", "content": "hi"}], Answer)
    await c.close()
    rf = fake_model.calls[0].response_format
    assert rf is not None and rf["type"] == "json_object" and "properties" in rf["schema"]
