"""LLM judges on scripted verdicts (and once on the embedded model): grades, both orders,
panels, RAG checks, bias and calibration reports, and a verdict that does not parse."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tether.evals import Outcome, Sample, Score
from tether.evals.judge import (
    AnswerRelevance,
    ContextRecall,
    Faithfulness,
    PairwiseJudge,
    Panel,
    RubricJudge,
    cohen_kappa,
)
from tether.evals.scorers.base import Scorer
from tether.testing import FunctionModel
from tether.types import Request


def asked(request: Request) -> str:
    return next(m.text for m in request.messages if m.role == "user")


def grade(s: Scorer, output: Any, expected: Any = None, **sample: Any) -> Score:
    item = Sample(id=sample.pop("id", "1"), input=sample.pop("input", "q"), expected=expected,
                  **sample)  # fmt: skip
    return asyncio.run(s.ascore(item, Outcome(output=output)))


def test_a_rubric_grade_becomes_a_score_with_its_reasons_and_the_reference_is_shown() -> None:
    seen: list[str] = []

    def judge(request: Request) -> str:
        seen.append(asked(request))
        return json.dumps({"reasons": "names the city", "grade": 5})

    scorer = RubricJudge(FunctionModel(judge), "Names the right city.", reference=True)
    score = grade(scorer, "Paris", expected="Paris, France", input="Capital of France?")
    assert score.value == 1.0 and score.explanation == "5/5: names the city"
    assert "Reference answer:\nParis, France" in seen[0] and "Capital of France?" in seen[0]


def test_a_verdict_that_does_not_parse_is_that_samples_error() -> None:
    scorer = RubricJudge(FunctionModel(lambda r: "I think it's fine!"), "Be right.")
    score = grade(scorer, "Paris")
    assert score.value == 0.0 and score.error and "did not parse" in score.error


def test_pairwise_counts_a_win_only_when_both_orders_agree() -> None:
    def fair(request: Request) -> str:  # prefers the answer that mentions Paris
        text = asked(request)
        a = text.split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
        return json.dumps({"reasons": "-", "better": "A" if "Paris" in a else "B"})

    def first_always(request: Request) -> str:  # a judge with pure position bias
        return json.dumps({"reasons": "-", "better": "A"})

    win = grade(PairwiseJudge(FunctionModel(fair), "Correctness."), "Paris", "London")
    assert win.value == 1.0 and win.metadata["consistent"]
    loss = grade(PairwiseJudge(FunctionModel(fair), "Correctness."), "London", "Paris")
    assert loss.value == 0.0
    biased = PairwiseJudge(FunctionModel(first_always), "Correctness.")
    tie = grade(biased, "London", "Paris")
    assert tie.value == 0.5 and not tie.metadata["consistent"]
    report = biased.aggregate([], [tie, tie])
    assert report["position_bias"] == 1.0 and report["win_rate"] == 0.0


def test_a_panel_combines_judges_and_survives_one_that_fails() -> None:
    def grader(value: int) -> RubricJudge:
        reply = json.dumps({"reasons": "-", "grade": value})
        return RubricJudge(FunctionModel(lambda r: reply), "x", name=f"g{value}")

    broken = RubricJudge(FunctionModel(lambda r: "nope"), "x", name="broken")
    mean = grade(Panel([grader(5), grader(1), grader(3), broken]), "answer")
    assert mean.value == pytest.approx(0.5) and mean.metadata["judges"]["broken"] == 0.0
    majority = grade(Panel([grader(5), grader(4), grader(1)], how="majority"), "answer")
    assert majority.value == 1.0
    assert grade(Panel([grader(5), grader(1), grader(2)], how="median"), "a").value == 0.25


def test_rag_judges_read_the_answers_hits_and_the_reference() -> None:
    prompts: list[str] = []

    def judge(request: Request) -> str:
        prompts.append(asked(request))
        return json.dumps({"reasons": "supported", "verdict": True})

    answer = {"text": "Tea steeps for two minutes.", "hits": [{"text": "Steep two minutes."}]}
    model = FunctionModel(judge)
    assert grade(Faithfulness(model), answer).value == 1.0
    assert "Context:\nSteep two minutes." in prompts[0] and "Tea steeps" in prompts[0]
    grade(AnswerRelevance(model), answer, input="How long?")
    assert "Question:\nHow long?" in prompts[1]
    grade(ContextRecall(model), answer, expected="two minutes")
    assert "Reference answer:\ntwo minutes" in prompts[2]


def test_length_bias_and_calibration_against_human_labels() -> None:
    def by_length(request: Request) -> str:  # grades longer answers higher, whatever they say
        answer = asked(request).split("Answer to grade:\n")[1].split("\n\nGrade")[0]
        return json.dumps({"reasons": "-", "grade": min(5, 1 + len(answer) // 10)})

    judge = RubricJudge(FunctionModel(by_length), "Correct.")
    outputs = ["no", "a longer answer", "a much, much longer answer here", "x" * 60]
    labels = ["pass", "fail", "fail", "fail"]  # the humans disagree with the judge
    samples = [Sample(id=str(i), input="q", label=label) for i, label in enumerate(labels)]
    pairs = zip(samples, outputs, strict=True)
    scores = [asyncio.run(judge.ascore(s, Outcome(output=o))) for s, o in pairs]
    report = judge.aggregate(samples, scores)
    assert report["length_bias"] > 0.9
    assert report["kappa"] < 0.6 and "kappa" in report["warning"]
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "a", "b", "b"]) == 0.0


@pytest.mark.slow
def test_the_embedded_model_gives_a_parseable_grade(project: object) -> None:
    judge = RubricJudge("local:smollm2", "The answer names the capital of France.")
    score = grade(judge, "Paris is the capital of France.", input="Capital of France?")
    assert score.error is None and 0.0 <= score.value <= 1.0 and "/5:" in score.explanation
