import math

import pytest

import tether
from tether.errors import ConfigError
from tether.structured import Classification, classify
from tether.structured.classify import label_probability
from tether.testing import ScriptedModel
from tether.types import TokenLogprob

LABELS = ["card_lost", "exchange_rate", "refund"]


def test_the_local_model_always_answers_one_of_the_labels_with_logprob_confidence() -> None:
    model = tether.model("local:smollm2")
    for text in ("My card was stolen yesterday.", "How many dollars is 10 euros?"):
        result = classify(text, LABELS, model=model, max_tokens=40, temperature=0)
        assert result.label in LABELS
        assert result.source == "logprobs"
        assert 0 < result.confidence <= 1


def test_a_model_without_logprobs_reports_its_own_confidence() -> None:
    model = ScriptedModel('{"label": "refund", "confidence": 0.65}')
    result = classify("money back please", LABELS, model=model, strategy="repair")
    assert (result.confidence, result.source) == (0.65, "self-reported")
    assert model.requests[0].params.logprobs is None  # not asked of a model that may lack them


def test_label_probability_multiplies_the_tokens_that_spell_the_label() -> None:
    text = '{"label": "card_lost", "confidence": 0.5}'
    pieces = ['{"', "label", '":', ' "', "card", "_lost", '",', ' "confidence', '":', " 0.5}"]
    logprobs = [TokenLogprob(token=p, logprob=-0.1 * (i + 1)) for i, p in enumerate(pieces)]
    assert "".join(pieces) == text
    # "card", "_lost" and '",' (the closing quote: the label ends there)
    assert label_probability(text, "card_lost", logprobs) == pytest.approx(
        math.exp(-0.5 - 0.6 - 0.7)
    )
    # tokens that do not spell the text (a character split across tokens): no figure
    broken = [*logprobs[:-1], TokenLogprob(token=" 0.5", logprob=-0.1)]
    assert label_probability(text, "card_lost", broken) is None
    assert label_probability(text, "refund", logprobs) is None


def test_a_label_outside_the_set_is_sent_back_and_corrected() -> None:
    model = ScriptedModel(
        '{"label": "lost_card", "confidence": 0.9}',
        '{"label": "card_lost", "confidence": 0.8}',
    )
    result = classify("stolen card", LABELS, model=model, strategy="repair")
    assert result == Classification(label="card_lost", confidence=0.8)
    assert "card_lost" in model.requests[1].messages[-1].text  # the allowed labels, quoted


def test_confidence_outside_0_to_1_is_rejected_and_retried() -> None:
    model = ScriptedModel(
        '{"label": "refund", "confidence": 7}', '{"label": "refund", "confidence": 0.7}'
    )
    assert classify("money back please", LABELS, model=model, strategy="repair").confidence == 0.7


def test_fewer_than_two_distinct_labels_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="two or more distinct labels"):
        classify("x", ["only"], model=ScriptedModel())
    with pytest.raises(ConfigError):
        classify("x", ["a", "a"], model=ScriptedModel())


def test_a_label_that_starts_another_counts_the_choice_to_stop() -> None:
    text = '{"label": "card", "confidence": 0.5}'
    pieces = ['{"label": "', "card", '", "confidence": 0.5}']
    logprobs = [
        TokenLogprob(token=p, logprob=lp) for p, lp in zip(pieces, [0.0, -0.1, -1.2], strict=True)
    ]
    # after "card" the model could have gone on to "card_lost": that choice is in the figure
    assert label_probability(text, "card", logprobs) == pytest.approx(math.exp(-0.1 - 1.2))
