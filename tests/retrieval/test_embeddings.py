"""The embedded embedder, the cache, the span per call, and the OpenAI wire format."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

import tether
from tether.config import Settings
from tether.errors import AuthError, ModelNotFound
from tether.tracing.setup import flush


def test_local_minilm_gives_unit_vectors_that_mean_something(project: Path) -> None:
    embedder = tether.embedder("local:minilm")
    vectors = embedder.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Stocks fell."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > unrelated
    assert embedder.embed("A cat sits on the mat.").shape == (384,)


def test_batches_match_single_texts(project: Path) -> None:
    embedder = tether.embedder("local:minilm", cache=False)
    texts = ["short", "a much longer sentence with many more words in it than the first"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed(t) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)  # padding does not change a vector


def test_unchanged_text_is_never_embedded_twice(project: Path) -> None:
    embedder = tether.embedder("local:minilm")
    calls: list[int] = []
    original = embedder.backend.embed

    async def counting(texts: list[str]) -> Any:
        calls.append(len(texts))
        return await original(texts)

    embedder.backend.embed = counting  # type: ignore[method-assign]
    first = embedder.embed(["alpha", "beta", "alpha"])
    assert calls == [2]  # the repeated text once
    again = tether.embedder("local:minilm")  # another instance, same project cache
    again.backend.embed = counting  # type: ignore[method-assign]
    assert np.allclose(again.embed(["beta", "alpha"]), first[[1, 0]])
    assert calls == [2]


def test_each_call_is_a_span_and_long_texts_are_cut(project: Path) -> None:
    embedder = tether.embedder("local:minilm")
    embedder.embed(["word " * 2000])
    assert flush()
    db = sqlite3.connect(Settings().db_path)
    (attributes,) = db.execute(
        "SELECT attributes FROM spans WHERE name = 'embeddings local:minilm'"
    ).fetchone()
    data = json.loads(attributes)
    assert data["gen_ai.operation.name"] == "embeddings"
    assert data["tether.embeddings.truncated"] == 1
    assert data["gen_ai.usage.input_tokens"] == 256  # the model's window


def test_unknown_embedders_say_what_exists(project: Path) -> None:
    with pytest.raises(ModelNotFound, match="local:minilm"):
        tether.embedder("local:nothing")
    with pytest.raises(ModelNotFound, match="ids look like"):
        tether.embedder("nonsense")


def openai_payload(count: int, encoding: str, dims: int = 4) -> dict[str, Any]:
    """OpenAI's documented response to POST /v1/embeddings, floats or base64 as asked."""
    import base64

    def vector(i: int) -> Any:
        values = [float(i + 1)] + [0.5] * (dims - 1)
        if encoding == "base64":
            return base64.b64encode(np.array(values, dtype=np.float32).tobytes()).decode()
        return values

    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": vector(i)}
            for i in reversed(range(count))  # out of order on purpose: index decides
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


def test_openai_wire_format(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    sent: list[dict[str, Any]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        sent.append(body)
        encoding = body.get("encoding_format", "float")
        return httpx2.Response(200, json=openai_payload(len(body["input"]), encoding))

    embedder = tether.embedder("openai:text-embedding-3-small", dimensions=4)
    embedder.backend.chat.options["http_client"] = httpx2.AsyncClient(  # type: ignore[attr-defined]
        transport=httpx2.MockTransport(handle)
    )
    vectors = embedder.embed(["one", "two"])
    assert sent[0]["model"] == "text-embedding-3-small"
    assert sent[0]["input"] == ["one", "two"] and sent[0]["dimensions"] == 4
    assert vectors.shape == (2, 4)
    assert vectors[0][0] < vectors[1][0]  # row 0 is index 0, whatever the order sent
    assert embedder.backend.price() is not None


def test_openai_errors_map_to_tether_errors(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            401, json={"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}
        )

    embedder = tether.embedder("openai:text-embedding-3-small")
    embedder.backend.chat.options["http_client"] = httpx2.AsyncClient(  # type: ignore[attr-defined]
        transport=httpx2.MockTransport(handle)
    )
    with pytest.raises(AuthError, match="API key was rejected"):
        embedder.embed("x")


@pytest.fixture(scope="module")
def embedding_server() -> Any:
    from tether.testing.servers import llama_server

    with llama_server("smollm2", threads=2, embedding=True) as base_url:
        yield base_url


@pytest.mark.slow
def test_an_openai_compatible_server_for_real(project: Path, embedding_server: str) -> None:
    """llama.cpp's server answers /v1/embeddings: the vector size is learnt on first use."""
    embedder = tether.embedder("openai:smollm2", base_url=embedding_server, compatible=True)
    vectors = embedder.embed(["hello world", "a second text"])
    assert vectors.shape[0] == 2 and vectors.shape[1] == embedder.dimensions > 0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.backend.price() is None  # a local server costs nothing known
