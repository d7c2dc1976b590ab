import pytest

import tether
from tether.errors import ConfigError
from tether.structured import Classification, classify
from tether.testing import ScriptedModel

LABELS = ["card_lost", "exchange_rate", "refund"]


def test_the_local_model_always_answers_one_of_the_labels() -> None:
    model = tether.model("local:smollm2")
    for text in ("My card was stolen yesterday.", "How many dollars is 10 euros?"):
        result = classify(model, text, LABELS, max_tokens=40, temperature=0)
        assert result.label in LABELS
        assert 0 <= result.confidence <= 1


def test_a_label_outside_the_set_is_sent_back_and_corrected() -> None:
    model = ScriptedModel(
        '{"label": "lost_card", "confidence": 0.9}',
        '{"label": "card_lost", "confidence": 0.8}',
    )
    result = classify(model, "stolen card", LABELS, strategy="repair")
    assert result == Classification(label="card_lost", confidence=0.8)
    assert "card_lost" in model.requests[1].messages[-1].text  # the allowed labels, quoted


def test_confidence_outside_0_to_1_is_rejected_and_retried() -> None:
    model = ScriptedModel(
        '{"label": "refund", "confidence": 7}', '{"label": "refund", "confidence": 0.7}'
    )
    assert classify(model, "money back please", LABELS, strategy="repair").confidence == 0.7


def test_fewer_than_two_distinct_labels_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="two or more distinct labels"):
        classify(ScriptedModel(), "x", ["only"])
    with pytest.raises(ConfigError):
        classify(ScriptedModel(), "x", ["a", "a"])
