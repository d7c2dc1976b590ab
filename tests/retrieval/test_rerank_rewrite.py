"""Rerankers and query rewriting around a search, on both stores."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

import tether
from tether.config import Settings
from tether.errors import ConfigError, Unavailable
from tether.retrieval import CrossEncoder, Document, LLMReranker, QueryRewriter
from tether.testing import FunctionModel, ScriptedModel
from tether.types import Request

DOCS = [
    Document(source="kettle.txt", text="Boil the water in a kettle before pouring it."),
    Document(source="oolong.txt", text="Oolong leaves are rolled and partly oxidised."),
    Document(source="matcha.txt", text="Matcha is stone-ground powder whisked with water."),
    Document(source="bikes.txt", text="A bicycle chain needs oil every few hundred miles."),
]


@pytest.fixture
def index(settings: Settings) -> tether.Index:
    made = tether.index("tea", settings=settings)
    made.add(DOCS)
    return made


def passage_of(request: Request) -> str:
    asked = next(m.text for m in request.messages if "Passage:\n" in m.text)
    return asked.split("Passage:\n", 1)[1]


def test_llm_reranker_puts_the_graded_best_first(index: tether.Index) -> None:
    def grade(request: Request) -> str:  # a judge that only likes matcha
        return json.dumps({"score": 9 if "Matcha" in passage_of(request) else 2})

    judge = FunctionModel(grade)
    hits = index.search("water", k=3, rerank=LLMReranker(judge))
    assert hits[0].source == "matcha.txt"
    assert hits[0].scores["rerank"] == 9.0 and hits[1].scores["rerank"] == 2.0
    assert len(judge.requests) == len(DOCS)  # every candidate graded once, k or not


def test_llm_reranker_grades_only_the_top_and_keeps_the_rest_in_order(
    index: tether.Index,
) -> None:
    plain = index.search("water kettle", k=4, mode="lexical")
    judge = FunctionModel(lambda request: json.dumps({"score": 5}))
    reranked = index.search("water kettle", k=4, mode="lexical", rerank=LLMReranker(judge, top=1))
    assert len(judge.requests) == 1
    # Equal grades and ungraded tails keep the search's own order.
    assert [h.source for h in reranked] == [h.source for h in plain]
    assert [h.scores["rerank"] for h in reranked][1:] == [-1.0] * (len(reranked) - 1)


def test_llm_reranker_unparsable_grade_is_ungraded_but_an_outage_raises(
    index: tether.Index,
) -> None:
    def grade(request: Request) -> str:
        return "no idea" if "Matcha" in passage_of(request) else json.dumps({"score": 6})

    reranker = LLMReranker(FunctionModel(grade))
    hits = index.search("water", k=4, rerank=reranker)
    assert hits[-1].source == "matcha.txt" and hits[-1].scores["rerank"] == -1.0
    assert reranker.failures == 1
    down = LLMReranker(ScriptedModel(Unavailable("provider down"), id="scripted:down"), top=1)
    with pytest.raises(Unavailable):
        index.search("water", k=2, rerank=down)


def test_cross_encoder_scores_query_passage_pairs(index: tether.Index) -> None:
    class Loaded:  # a CrossEncoder loaded by the caller: anything with predict(pairs)
        def __init__(self) -> None:
            self.pairs: list[tuple[str, str]] = []

        def predict(self, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
            self.pairs.extend(pairs)
            return [float("oxidised" in passage) for _, passage in pairs]

    loaded = Loaded()
    hits = index.search("leaves", k=2, rerank=CrossEncoder(model=loaded))
    assert hits[0].source == "oolong.txt" and hits[0].scores["rerank"] == 1.0
    assert loaded.pairs and all(query == "leaves" for query, _ in loaded.pairs)


def test_cross_encoder_without_sentence_transformers_says_what_to_install(
    index: tether.Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'tether\[torch\]'"):
        index.search("leaves", k=2, rerank=CrossEncoder())


def test_rewrites_find_what_the_query_words_miss(index: tether.Index, settings: Settings) -> None:
    # "tea leaves rolled" shares no word with matcha's document; the rewrite does.
    writer = FunctionModel(
        lambda request: json.dumps({"queries": ["stone-ground powder", "tea leaves rolled"]})
    )
    plain = index.search("tea leaves rolled", k=4, mode="lexical")
    assert "matcha.txt" not in {h.source for h in plain}
    hits = index.search("tea leaves rolled", k=4, mode="lexical", rewrite=QueryRewriter(writer))
    sources = [h.source for h in hits]
    assert "matcha.txt" in sources
    assert sources[0] == "oolong.txt"  # the query's own best match still leads
    assert len(writer.requests) == 1

    from tether.tracing.setup import flush

    assert flush()
    db = sqlite3.connect(settings.db_path)
    (attributes,) = db.execute(
        "SELECT attributes FROM spans WHERE name = 'search tea' ORDER BY start_ns DESC"
    ).fetchone()
    data = json.loads(attributes)
    assert data["tether.search.rewrites"] == 1  # the query repeated is not searched twice
    assert "stone-ground powder" in data["tether.search.rewritten"]


def test_rewriter_drops_empty_and_repeated_queries_and_caps_them() -> None:
    writer = FunctionModel(
        lambda request: json.dumps({"queries": ["", "Tea  Leaves", "a", "b", "a", "c"]})
    )
    assert QueryRewriter(writer, n=2)("tea leaves") == ["a", "b"]


def test_ask_passes_rerank_and_rewrite_to_its_search(index: tether.Index) -> None:
    judge = FunctionModel(
        lambda request: json.dumps({"score": 9 if "Matcha" in passage_of(request) else 1})
    )
    writer = FunctionModel(lambda request: json.dumps({"queries": ["powder whisked"]}))
    chat = ScriptedModel("Matcha is stone-ground powder whisked with water [1].")
    answer = tether.ask(
        "What is matcha?",
        index=index,
        model=chat,
        k=2,
        rerank=LLMReranker(judge),
        rewrite=QueryRewriter(writer),
    )
    assert not answer.abstained
    assert answer.hits[0].source == "matcha.txt" and answer.hits[0].scores["rerank"] == 9.0
    assert len(writer.requests) == 1


@pytest.mark.slow
def test_the_embedded_model_grades_and_rewrites(project: object) -> None:
    settings = Settings(home=project / ".tether")  # type: ignore[operator]
    index = tether.index("tea", settings=settings)
    index.add(DOCS)
    reranker = LLMReranker("local:smollm2", top=3)
    hits = index.search("how is matcha made?", k=4, rerank=reranker)
    grades = [h.scores["rerank"] for h in hits]
    assert reranker.failures == 0  # the grammar holds the small model to a number
    assert all(0 <= g <= 10 for g in grades[:3]) and grades[3] == -1.0
    rewrites = QueryRewriter("local:smollm2")("how is matcha made?")
    assert isinstance(rewrites, list) and all(isinstance(q, str) and q for q in rewrites)
