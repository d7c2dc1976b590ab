"""Closing a model frees what it holds: a loaded local model and its thread, SDK clients.

``aclose()``/``close()`` go down through every wrapper to the providers; ``with`` and
``async with`` close on the way out. A client the caller injected is the caller's to close.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

import tether
from tether.models import local, local_llama
from tether.models.anthropic import AnthropicProvider
from tether.models.base import Capabilities, Model, Provider, ProviderModel
from tether.models.middleware.fallback import Fallback
from tether.models.middleware.retry import Retry
from tether.models.middleware.router import Router
from tether.models.openai import OpenAIProvider
from tether.testing import ScriptedModel
from tether.types import Message, Params, Request, Response, StreamEvent


class Holding(ScriptedModel):
    """A model that counts how often it was closed."""

    def __init__(self, *script: Any) -> None:
        super().__init__(*script)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


class HoldingProvider(Provider):
    name = "holding"

    def __init__(self) -> None:
        super().__init__("test")
        self.closed = 0

    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def request(self, request: Request) -> Response:
        raise AssertionError("not called")

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        raise AssertionError("not called")

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_model_closes_by_default_as_a_no_op() -> None:
    model = ScriptedModel("ok")
    await model.aclose()
    model.close()
    assert model.generate("hi").text == "ok"


async def test_closing_goes_through_wrappers_to_the_provider() -> None:
    provider = HoldingProvider()
    model = Retry(ProviderModel(provider), retries=1)
    await model.aclose()
    assert provider.closed == 1


def test_fallbacks_and_routers_close_every_model_once() -> None:
    first, second = Holding("a"), Holding("b")
    Fallback([first, second]).close()
    assert (first.closed, second.closed) == (1, 1)
    cheap, smart = Holding("c"), Holding("d")
    Router("r", {"cheap": cheap, "smart": smart, "also": cheap}, default="cheap").close()
    assert (cheap.closed, smart.closed) == (1, 1)  # a model behind two routes: closed once


async def test_a_failing_close_still_closes_the_others() -> None:
    class Failing(Holding):
        async def aclose(self) -> None:
            await super().aclose()
            raise RuntimeError("cannot close")

    broken, other = Failing("a"), Holding("b")
    with pytest.raises(RuntimeError, match="cannot close"):
        await Fallback([broken, other]).aclose()
    assert other.closed == 1


async def test_with_and_async_with_close_the_model() -> None:
    inner = Holding("one", "two")
    with Retry(inner, retries=0) as model:
        assert model.generate("hi").text == "one"
    assert inner.closed == 1
    async with Retry(inner, retries=0) as model:
        assert (await model.agenerate("hi")).text == "two"
    assert inner.closed == 2


def provider_of(model: Model) -> Provider:
    while not isinstance(model, ProviderModel):
        model = model.inner  # type: ignore[attr-defined]
    return model.provider


def test_closing_a_local_model_frees_it_and_a_later_call_loads_it_again() -> None:
    model = tether.model("local:smollm2")
    model.generate("Hi", max_tokens=2)
    provider = provider_of(model)
    assert isinstance(provider, local.LocalProvider)
    loaded = provider.model()
    llama = weakref.ref(loaded.llama)
    model.close()
    assert loaded not in local_llama._loaded.values()  # forgotten by the module cache
    assert loaded.thread._shutdown  # type: ignore[attr-defined]  # its thread ended
    del loaded
    gc.collect()
    assert llama() is None  # nothing holds the llama.cpp model any more
    assert model.generate("Hi", max_tokens=2).text is not None  # loads it again
    again = provider.model()
    assert again in local_llama._loaded.values()
    model.close()


def test_what_else_holds_a_closed_local_model_loads_it_again_instead_of_crashing() -> None:
    from tether.errors import ConfigError
    from tether.prompts.tokens import LlamaCounter

    counter = LlamaCounter("smollm2")
    before = counter.count("hello world")
    model = tether.model("local:smollm2")
    loaded = provider_of(model).model()
    model.close()
    with pytest.raises(ConfigError, match="was closed; build the model again"):
        _ = loaded.llama  # its memory is freed: touching it would crash the process
    assert counter.count("hello world") == before  # the counter loads the model anew


async def test_a_call_that_meets_its_model_closed_may_be_made_again() -> None:
    from tether.errors import Unavailable

    model = tether.model("local:smollm2")
    provider = provider_of(model)
    loaded = provider.model()
    local_llama.unload(loaded)  # another holder closes it between load and call
    provider.model = lambda: loaded  # type: ignore[method-assign]  # this call still holds it
    with pytest.raises(Unavailable, match="closed while this call waited"):
        await provider.request(Request(messages=[Message.user("Hi")], params=Params(max_tokens=2)))


async def test_openai_closes_its_own_client_not_an_injected_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-close-0123456789abcdef")
    own = OpenAIProvider("gpt-4.1-mini")
    client = own.client()
    await ProviderModel(own).aclose()
    assert client.is_closed()
    assert own.client() is not client  # a later call connects again
    await own.aclose()

    async with httpx2.AsyncClient() as injected:
        given = OpenAIProvider("gpt-4.1-mini", {"http_client": injected})
        given.client()
        await ProviderModel(given).aclose()
        assert not injected.is_closed


async def test_anthropic_closes_its_own_client_not_an_injected_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-close-0123456789")
    own = AnthropicProvider("claude-haiku-4-5")
    client = own._client()
    await ProviderModel(own).aclose()
    assert client.is_closed()

    async with httpx2.AsyncClient() as injected:
        given = AnthropicProvider("claude-haiku-4-5", {"http_client": injected})
        given._client()
        await ProviderModel(given).aclose()
        assert not injected.is_closed
