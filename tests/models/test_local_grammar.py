"""Grammar sampling best candidates first gives exactly llama.cpp's own grammar output."""

import ctypes
import json
from typing import Any

import pytest
from llama_cpp import Llama

from tether.models.local import load, resolve_path
from tether.models.local_grammar import FIRST_LOOK, grammar_for, keep_count

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


def test_repeated_calls_free_their_samplers_cleanly() -> None:
    outputs = {complete(RECEIPT, f"Receipt as JSON: {TEXT}", own=False, temperature=0)[0]}
    for _ in range(5):
        outputs.add(complete(RECEIPT, f"Receipt as JSON: {TEXT}", own=False, temperature=0)[0])
    assert len(outputs) == 1


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
