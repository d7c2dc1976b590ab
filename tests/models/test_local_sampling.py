"""Grammar sampling best candidates first gives exactly llama.cpp's own grammar output."""

import ctypes
import json
from typing import Any

import pytest
from llama_cpp import Llama

from tether.models.local_files import resolve_path
from tether.models.local_llama import load
from tether.models.local_sampling import FIRST_LOOK, grammar_for, keep_count

RECEIPT = {
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "date": {"type": "string"},
        "total": {"type": "number"},
        "paid": {"type": "boolean"},
        "items": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["company", "date", "total", "paid", "items"],
}
TEXT = "SHELL STATION, 12 Jalan Ampang. 03/05/2018. 2 x bread, 1 x milk. TOTAL RM 12.50. PAID"
# Keys the model would never write unprompted: most steps need the whole vocabulary checked.
ODD = {
    "type": "object",
    "properties": {"qzx": {"enum": ["vvk", "jjw"]}, "wq": {"type": "integer"}},
    "required": ["qzx", "wq"],
}


def complete(schema: dict[str, Any], prompt: str, own: bool, **params: Any) -> tuple[str, Any]:
    """One grammar-constrained completion, with tether's sampler or (own=True) llama.cpp's."""
    llama = load(resolve_path("smollm2"), 2048, None).llama
    counting = type(llama)
    if own:
        mine = counting.__dict__["_init_sampler"]
        counting._init_sampler = Llama._init_sampler  # type: ignore[method-assign]
    try:
        llama.best_first = None
        llama.reset()  # the whole prompt evaluated each time: a cached prefix moves logits a little
        result = llama.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            grammar=grammar_for(schema),
            max_tokens=48,
            **params,
        )
    finally:
        if own:
            counting._init_sampler = mine  # type: ignore[method-assign]
    return result["choices"][0]["message"]["content"], llama.best_first


@pytest.mark.parametrize(
    "params", [{"temperature": 0.0}, {"temperature": 0.8, "seed": 7}, {"temperature": 1.0}]
)
def test_same_output_as_llama_cpps_own_grammar_sampler(params: dict[str, Any]) -> None:
    prompt = f"Extract the receipt as JSON.\n\n{TEXT}"
    if "seed" not in params:
        params = {**params, "seed": 11}
    theirs, unused = complete(RECEIPT, prompt, own=True, **params)
    ours, sampler = complete(RECEIPT, prompt, own=False, **params)
    assert unused is None
    assert ours == theirs
    assert sampler is not None and sampler.steps > 0  # it was this sampler that ran
    if params["temperature"] == 0:
        assert sampler.fallbacks < sampler.steps / 4  # and it mostly skipped the full check


def test_when_the_best_candidates_are_all_invalid_it_checks_the_whole_vocabulary() -> None:
    theirs, _ = complete(ODD, "Say hello.", own=True, temperature=0)
    ours, sampler = complete(ODD, "Say hello.", own=False, temperature=0)
    assert ours == theirs
    assert json.loads(ours)["qzx"] in ("vvk", "jjw")
    assert sampler.fallbacks > 0


def test_repeated_calls_give_the_same_answer_and_free_their_samplers() -> None:
    import gc
    import weakref

    outputs, samplers = set(), []
    for _ in range(4):
        text, sampler = complete(RECEIPT, f"Receipt as JSON: {TEXT}", own=False, temperature=0)
        outputs.add(text)
        samplers.append(weakref.ref(sampler))
    del sampler
    assert len(outputs) == 1
    load(resolve_path("smollm2"), 2048, None).llama.best_first = None
    complete(RECEIPT, "Say hi.", own=True, temperature=0)  # a new chain replaces the last one
    gc.collect()
    assert [ref() for ref in samplers] == [None] * 4  # nothing holds them: their grammars freed


def test_keep_count_follows_what_the_rest_of_the_chain_uses() -> None:
    assert keep_count(temp=0.0, top_k=40, mirostat_mode=0, n_vocab=49152) == 1
    assert keep_count(temp=0.7, top_k=40, mirostat_mode=0, n_vocab=49152) == 40
    # no truncation, mirostat or plain sampling from the distribution: all are needed
    assert keep_count(temp=0.7, top_k=0, mirostat_mode=0, n_vocab=49152) is None
    assert keep_count(temp=0.7, top_k=FIRST_LOOK, mirostat_mode=0, n_vocab=49152) is None
    assert keep_count(temp=0.7, top_k=40, mirostat_mode=2, n_vocab=49152) is None
    assert keep_count(temp=-1.0, top_k=40, mirostat_mode=0, n_vocab=49152) is None


def allows(schema: dict[str, Any], before: str, after: str) -> bool:
    """Whether the grammar for ``schema``, having read ``before``, lets ``after`` follow."""
    from llama_cpp import llama_cpp as capi

    llama = load(resolve_path("smollm2"), 2048, None).llama
    grammar = grammar_for(schema)
    sampler = capi.llama_sampler_init_grammar(
        llama._model.vocab, grammar._grammar.encode(), grammar._root.encode()
    )
    try:
        for token in llama.tokenize(before.encode(), add_bos=False, special=False):
            capi.llama_sampler_accept(sampler, token)
        (token,) = llama.tokenize(after.encode(), add_bos=False, special=False)
        data = (capi.llama_token_data * 1)(capi.llama_token_data(id=token, logit=1.0, p=0.0))
        array = capi.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        capi.llama_sampler_apply(sampler, ctypes.byref(array))
        return bool(data[0].logit > -1e30)
    finally:
        capi.llama_sampler_free(sampler)


def test_a_string_cannot_hold_a_raw_control_character() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert allows(schema, '{"a": "x', "y")
    assert not allows(schema, '{"a": "x', "\n")  # JSON forbids it: no parser would read it
    assert not allows(schema, '{"a": "x', "\t")
    assert allows(schema, '{"a": "x', "\\")  # the escaped form stays open


def test_properties_come_in_the_schemas_order() -> None:
    schema = {
        "type": "object",
        "properties": {"zeta": {"type": "string"}, "alpha": {"type": "string"}},
        "required": ["zeta", "alpha"],
    }
    assert allows(schema, "{", ' "')
    assert allows(schema, '{ "', "z")
    assert not allows(schema, '{ "', "alpha")


# -- log-probabilities -------------------------------------------------------------------------


def test_logprobs_match_llama_cpps_own_with_every_logit_kept() -> None:
    import math

    import tether

    prompt = "Is the sky blue? Answer yes or no."
    load(resolve_path("smollm2"), 2048, None).llama.reset()  # the whole prompt, as below
    response = tether.model("local:smollm2").generate(
        prompt, max_tokens=6, temperature=0, logprobs=3
    )
    assert response.logprobs is not None
    assert len(response.logprobs) == response.usage.output_tokens
    assert "".join(t.token for t in response.logprobs) == response.text
    for step in response.logprobs:
        assert step.logprob <= 0
        assert len(step.top) == 3
        assert [lp for _, lp in step.top] == sorted((lp for _, lp in step.top), reverse=True)
    first = response.logprobs[0]
    assert first.top[0] == (first.token, first.logprob)  # greedy, no penalty yet: the best

    # llama-cpp-python's own log-probabilities need a model that keeps every position's logits
    reference = Llama(
        model_path=str(resolve_path("smollm2")), n_ctx=2048, logits_all=True, verbose=False
    )
    theirs = reference.create_chat_completion(
        messages=[{"role": "user", "content": prompt}],
        max_tokens=1,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )["choices"][0]["logprobs"]["content"][0]
    assert theirs["token"] == first.token
    assert math.isclose(theirs["logprob"], first.logprob, abs_tol=1e-3)


def test_no_logprobs_unless_asked_and_none_in_streams() -> None:
    import tether
    from tether.errors import UnsupportedParameter

    model = tether.model("local:smollm2")
    assert model.generate("Hi", max_tokens=3).logprobs is None
    with pytest.raises(UnsupportedParameter, match="use generate"):
        list(model.stream("Hi", max_tokens=3, logprobs=1))


def test_logprobs_with_a_grammar_keep_the_grammars_output() -> None:
    import tether
    from tether.types import OutputSchema, Request

    model = tether.model("local:smollm2")
    output = OutputSchema(name="R", schema=RECEIPT)
    plain = Request.model_validate(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": TEXT}]}]}
    )
    asked = plain.model_copy(update={"output": output})
    params = {"max_tokens": 40, "temperature": 0}
    llama = load(resolve_path("smollm2"), 2048, None).llama
    llama.reset()  # each call evaluates the whole prompt: a cached prefix moves logits a little
    without = model.generate(asked, **params)
    llama.reset()
    with_logprobs = model.generate(asked, logprobs=2, **params)
    assert with_logprobs.text == without.text  # recording changes nothing
    assert with_logprobs.logprobs is not None
    assert "".join(t.token for t in with_logprobs.logprobs) == with_logprobs.text


def test_logprobs_follow_the_text_when_a_stop_string_cuts_it() -> None:
    import tether

    load(resolve_path("smollm2"), 2048, None).llama.reset()
    model = tether.model("local:smollm2")
    response = model.generate(
        "List three colours, separated by commas.", max_tokens=30, temperature=0, stop=[","],
        logprobs=0,
    )  # fmt: skip
    assert response.logprobs is not None
    spelled = "".join(t.token for t in response.logprobs)
    assert spelled.startswith(response.text)
    assert len(spelled) - len(response.text) < len(response.logprobs[-1].token)


def test_a_character_split_over_tokens_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from tether.models import local_llama

    pieces = {1: b"caf", 2: b"\xc3", 3: b"\xa9", 4: b"!"}  # "café!" with é in two tokens
    fake = SimpleNamespace(
        recorder=SimpleNamespace(
            records=[(1, -0.1, [(1, -0.1)]), (2, -0.2, [(2, -0.2)]), (3, -0.3, []), (4, -0.4, [])]
        ),
        _model=SimpleNamespace(vocab=None),
        detokenize=lambda tokens, special: pieces[tokens[0]],
    )
    monkeypatch.setattr(local_llama, "_is_eog", lambda vocab, token: False)
    entries = local_llama.logprobs_of(fake, "café!")
    assert entries is not None
    assert [e.token for e in entries] == ["caf", "é", "!"]
    assert entries[1].logprob == pytest.approx(-0.5)  # both halves of the character
    assert entries[1].top == [("\ufffd", -0.2)]  # the first half's alternatives
    assert local_llama.logprobs_of(fake, "caf") is not None
    assert [e.token for e in local_llama.logprobs_of(fake, "caf") or []] == [
        "caf"
    ]  # cut after "caf"


def test_a_guard_that_fails_falls_back_to_the_plain_grammar_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tether
    from tether.models.json_guard import JsonGuard
    from tether.types import Bounds, Message, OutputSchema, Request

    def broken(self: JsonGuard) -> None:
        raise RuntimeError("guard broke")

    monkeypatch.setattr(JsonGuard, "constraint", broken)
    request = Request(
        messages=[Message.user(f"Extract the receipt as JSON.\n\n{TEXT}")],
        output=OutputSchema(name="receipt", schema=RECEIPT, bounds=Bounds()),
        params={"temperature": 0, "max_tokens": 80},
    )
    with pytest.warns(UserWarning, match="grammar guard failed.*guard broke"):
        response = tether.model("local:smollm2").generate(request)
    assert set(json.loads(response.text)) == set(RECEIPT["properties"])  # still valid JSON
