"""Every scorer on outputs a user's task returns: values, explanations, run-level metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from tether.evals import (
    Classification,
    Cost,
    EmbeddingSimilarity,
    ExactMatch,
    FieldMatch,
    Includes,
    JsonValid,
    Latency,
    Numeric,
    Outcome,
    Regex,
    Retrieval,
    Sample,
    Score,
    Scorer,
    TokenF1,
    scorer,
)
from tether.evals.scorers.classification import calibration_error, macro_f1
from tether.evals.scorers.match import normalize, token_f1


def run(s: Scorer, output: Any, expected: Any = None, **outcome: Any) -> Score:
    sample = Sample(id="1", input="q", expected=expected)
    return asyncio.run(s.ascore(sample, Outcome(output=output, **outcome)))


def test_exact_match_normalises_like_squad_unless_asked_not_to() -> None:
    assert normalize("  The Eiffel-Tower! ") == "eiffeltower"
    assert run(ExactMatch(), "The Paris.", ["London", "paris"]).value == 1.0
    assert run(ExactMatch(normalized=False), "The Paris.", "paris").value == 0.0
    assert run(ExactMatch(normalized=False), " paris ", "paris").value == 1.0
    nothing = run(ExactMatch(), "x", None)
    assert nothing.value == 0.0 and "expects nothing" in nothing.explanation


def test_includes_and_regex() -> None:
    assert run(Includes(), "It is PARIS, of course", "paris").value == 1.0
    assert run(Includes(ignore_case=False), "It is PARIS", "paris").value == 0.0
    assert run(Regex(r"^\d{4}-\d{2}-\d{2}$"), "2024-01-31").value == 1.0
    assert run(Regex(r"^\d{4}$"), "2024-01-31").value == 0.0
    # {expected} is each answer, escaped: "3.5" must not match "315".
    assert run(Regex(r"total: {expected}\b"), "Total: 315", "3.5").value == 0.0
    assert run(Regex(r"total: {expected}\b"), "Total: 3.5 EUR", "3.5").value == 1.0


def test_token_f1_is_squads() -> None:
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(
        2 * (1.0 * 2 / 3) / (1 + 2 / 3)
    )
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    score = run(TokenF1(), "in Normandy, France", ["Normandy", "France"])
    assert score.value == pytest.approx(0.5) and "'Normandy'" in score.explanation  # P 1/3, R 1


def test_numeric_tolerance_absolute_and_relative() -> None:
    assert run(Numeric(tolerance=0.01), "The total is 1,234.50 EUR", "1234.5").value == 1.0
    assert run(Numeric(), "about 10", 11).value == 0.0
    assert run(Numeric(tolerance=0.1, relative=True), 10.5, 10).value == 1.0
    assert run(Numeric(tolerance=0.01, relative=True), 10.5, 10).value == 0.0
    assert run(Numeric(), "no digits here", 3).explanation == "no number in the output"
    assert run(Numeric(), -3.0, "-3").value == 1.0


class Receipt(BaseModel):
    company: str
    total: float


def test_json_validity_against_a_model_and_field_match() -> None:
    assert run(JsonValid(Receipt), '{"company": "ACME", "total": 3}').value == 1.0
    bad = run(JsonValid(Receipt), {"company": "ACME", "total": "lots"})
    assert bad.value == 0.0 and bad.explanation.startswith("total:")
    assert run(JsonValid(Receipt), "not json").value == 0.0
    fields = FieldMatch()
    score = run(fields, Receipt(company="Acme.", total=3.0), {"company": "ACME", "total": "3"})
    assert score.value == 0.5 and "wrong: total" in score.explanation  # "3" is not 3.0
    exact = run(fields, {"company": "acme", "total": 3}, {"company": "ACME", "total": 3.0})
    assert exact.value == 1.0
    assert fields.aggregate([], [score, exact]) == {"field_company": 1.0, "field_total": 0.5}


def test_classification_with_confidences_aggregates_f1_confusion_and_calibration() -> None:
    class Said(BaseModel):
        label: str
        confidence: float

    c = Classification()
    scores = [
        run(c, Said(label="Billing", confidence=0.9), "billing"),
        run(c, Said(label="bug", confidence=0.8), "billing"),
        run(c, "bug", "bug"),
    ]
    assert [s.value for s in scores] == [1.0, 0.0, 1.0]
    metrics = c.aggregate([], scores)
    assert metrics["confusion"] == {"billing": {"billing": 1, "bug": 1}, "bug": {"bug": 1}}
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    # Two rated samples: 0.9 right, 0.8 wrong, each in its own bin.
    assert metrics["calibration_error"] == pytest.approx((0.1 + 0.8) / 2)
    assert macro_f1([("a", "a"), ("b", "a")]) == pytest.approx((2 / 3 + 0) / 2)
    assert calibration_error([1.0, 1.0], [True, True]) == 0.0


def test_retrieval_metrics_from_ids_hits_and_graded_relevance() -> None:
    class Hit(BaseModel):
        source: str

    ranked = [Hit(source="d3"), Hit(source="d1"), Hit(source="d1"), Hit(source="d9")]
    recall = run(Retrieval(k=2), ranked, ["d1", "d2"])
    assert recall.value == 0.5 and recall.metadata["mrr"] == 0.5
    assert "1 of 2 relevant in the top 2" in recall.explanation
    ndcg = run(Retrieval("ndcg", k=3), ["d1", "d2"], {"d1": 2, "d2": 1})
    assert ndcg.value == pytest.approx(1.0)
    mrr = Retrieval("mrr")
    assert run(mrr, ["x", "y", "d1"], ["d1"]).value == pytest.approx(1 / 3)
    agg = Retrieval(k=2).aggregate([], [recall])
    assert agg == {"mrr": 0.5, "ndcg@2": recall.metadata["ndcg@2"]}


def test_latency_and_cost_are_scores_and_an_unpriced_call_is_an_error() -> None:
    assert run(Latency(), "x", latency_s=0.25).value == 0.25
    assert run(Cost(), "x", cost_usd=0.002).value == 0.002
    unpriced = run(Cost(), "x", cost_usd=None)
    assert unpriced.error is not None and "no price" in unpriced.error


def test_a_plain_function_becomes_a_scorer() -> None:
    @scorer
    def shouty(output: str, sample: Sample) -> bool:
        return output.isupper()

    @scorer(name="length")
    async def length(output: str, sample: Sample) -> float:
        return float(len(output))

    assert shouty.name == "shouty" and run(shouty, "HEY").value == 1.0
    assert length.name == "length" and run(length, "abcd").value == 4.0

    @scorer
    def wrong(output: str, sample: Sample) -> str:
        return "yes"

    with pytest.raises(TypeError, match=r"return a number, a bool or a tether\.evals\.Score"):
        run(wrong, "x")


def test_embedding_similarity_on_the_embedded_model(project: object) -> None:
    s = EmbeddingSimilarity()
    close = run(s, "The cat sat on the mat.", ["A cat was sitting on a mat.", "Stocks fell."])
    far = run(s, "Quarterly revenue fell sharply.", ["A cat was sitting on a mat."])
    assert close.value > 0.7 > far.value


def test_rouge_l_by_google_rouge_score() -> None:
    from tether.evals import RougeL

    same = run(RougeL(), "The cat sat on the mat.", "the cat sat on the mat")
    assert same.value == pytest.approx(1.0)
    # The best reference: LCS "cat on mat", all 3 of its words (P 1) and 3 of 6 (R 0.5).
    part = run(RougeL(), "cat on mat", ["the dog sat on a rug", "the cat sat on the mat"])
    assert part.value == pytest.approx(2 * (1.0 * 0.5) / 1.5, abs=1e-6)


def test_json_schema_validity_with_jsonschema() -> None:
    schema = {
        "type": "object",
        "properties": {"total": {"type": "number"}, "items": {"type": "array"}},
        "required": ["total"],
    }
    assert run(JsonValid(schema), '{"total": 3.5, "items": []}').value == 1.0
    missing = run(JsonValid(schema), {"items": []})
    assert missing.value == 0.0 and "'total' is a required property" in missing.explanation
    wrong = run(JsonValid(schema), {"total": "lots"})
    assert wrong.explanation.startswith("total:")
