"""Grammar-constrained sampling for local models that checks the likely tokens first.

llama.cpp's grammar sampler checks every token of the vocabulary against the grammar at every
step (49,152 for SmolLM2), which costs about 40% of decoding speed. Sampling only ever keeps
the best few valid tokens: one for greedy decoding, ``top_k`` otherwise. So this sampler
checks the highest-scoring candidates first and stops once it has enough valid ones; only
when they run out does it check the whole vocabulary, as llama.cpp would. The tokens it keeps
are exactly the ones the full check would keep, so the output is the same, only sooner.
"""

from __future__ import annotations

import ctypes
import json
from functools import cache
from typing import Any, cast

from tether.errors import UnsupportedParameter

FIRST_LOOK = 64  # candidates checked before falling back to the whole vocabulary


# llama-cpp-python's converter lets a JSON string hold raw control characters (a newline,
# say), which no JSON parser accepts; JSON's own rule excludes them.
LOOSE_CHAR = r'[^"\\]'
JSON_CHAR = r'[^"\\\x7F\x00-\x1F]'


@cache
def _grammar(schema_json: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        loose = LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:  # llama.cpp names the construct it cannot convert
        raise UnsupportedParameter(
            f"llama.cpp cannot turn this JSON schema into a grammar ({exc}); simplify the "
            "schema, or use tether.structured with strategy='repair'"
        ) from exc
    lines = [
        line.replace(LOOSE_CHAR, JSON_CHAR, 1) if line.startswith("char ::= ") else line
        for line in loose._grammar.splitlines()
    ]
    return LlamaGrammar.from_string("\n".join(lines), verbose=False)


def grammar_for(schema: dict[str, Any]) -> Any:
    """The llama.cpp grammar that only admits JSON valid under ``schema`` (cached), its
    properties in the schema's order.

    Built here rather than through response_format, where llama-cpp-python silently falls
    back to any-JSON when a schema cannot be converted."""
    return _grammar(json.dumps(schema))


def keep_count(temp: float, top_k: int, mirostat_mode: int, n_vocab: int) -> int | None:
    """How many valid candidates the rest of llama-cpp-python's chain can use: 1 for greedy,
    ``top_k`` when it truncates, None when it needs them all (then nothing is saved)."""
    if mirostat_mode != 0 or temp < 0:
        return None
    if temp == 0:
        return 1
    if 0 < top_k < min(n_vocab, FIRST_LOOK):
        return top_k
    return None


class BestFirstGrammar:
    """A llama.cpp sampler (for a sampler chain) that applies ``grammar`` to the best
    ``keep`` candidates, checking them best first; see the module docstring."""

    def __init__(self, vocab: Any, grammar: Any, keep: int) -> None:
        import numpy as np
        from llama_cpp import llama_cpp as capi

        self.capi = capi
        self.keep = keep
        self.grammar = capi.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self.grammar:
            raise UnsupportedParameter(
                "llama.cpp could not parse the grammar built from the schema"
            )
        self.fallbacks = 0  # steps that needed the whole vocabulary checked
        self.steps = 0
        self._probe = (capi.llama_token_data * FIRST_LOOK)()
        self._probe_array = capi.llama_token_data_array(
            data=self._probe, size=0, selected=-1, sorted=False
        )
        # llama_token_data {int32 id; float logit; float p;} as numpy sees it
        self._dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)])
        assert self._dtype.itemsize == ctypes.sizeof(capi.llama_token_data)
        probe_view = np.frombuffer(cast(Any, self._probe), dtype=self._dtype)
        self._probe_ids, self._probe_logits = probe_view["id"], probe_view["logit"]
        iface = capi.llama_sampler_i()
        # The callbacks are kept on self: llama.cpp holds bare pointers to them.
        self._callbacks = (
            capi.llama_sampler_i_name(lambda _smpl: b"tether-best-first-grammar"),
            capi.llama_sampler_i_accept(lambda _smpl, token: self.accept(token)),
            capi.llama_sampler_i_apply(lambda _smpl, cur_p: self.apply(cur_p)),
            capi.llama_sampler_i_reset(lambda _smpl: capi.llama_sampler_reset(self.grammar)),
        )
        iface.name, iface.accept, iface.apply, iface.reset = self._callbacks
        self._iface = iface
        self.sampler = capi.llama_sampler(iface=ctypes.pointer(iface), ctx=None)

    def accept(self, token: int) -> None:
        self.capi.llama_sampler_accept(self.grammar, token)

    def apply(self, cur_p: Any) -> None:
        import numpy as np

        self.steps += 1
        array = cur_p.contents
        size = int(array.size)
        buffer = (self.capi.llama_token_data * size).from_address(
            ctypes.addressof(array.data.contents)
        )
        view = np.frombuffer(cast(Any, buffer), dtype=self._dtype)
        logits = view["logit"]
        look = min(FIRST_LOOK, size)
        best = np.argpartition(-logits, look - 1)[:look] if look < size else np.arange(size)
        best = best[np.argsort(-logits[best], kind="stable")]
        self._probe_ids[:look] = view["id"][best]
        self._probe_logits[:look] = logits[best]
        self._probe_array.size = look
        self._probe_array.selected = -1
        self._probe_array.sorted = False
        self.capi.llama_sampler_apply(self.grammar, ctypes.byref(self._probe_array))
        valid = np.flatnonzero(np.isfinite(self._probe_logits[:look]))
        if len(valid) < self.keep and look < size:
            # Too few of the best are allowed here: check them all, as llama.cpp would.
            self.fallbacks += 1
            self.capi.llama_sampler_apply(self.grammar, cur_p)
            return
        kept = best[valid[: self.keep]]
        chosen = logits[kept].copy()
        logits[:] = -np.inf
        logits[kept] = chosen
        array.sorted = False
        array.selected = -1

    def close(self) -> None:
        if self.grammar:
            self.capi.llama_sampler_free(self.grammar)
            self.grammar = None

    def __del__(self) -> None:
        self.close()


def install(sampler: Any, vocab: Any, grammar: Any, keep: int) -> BestFirstGrammar:
    """Put a BestFirstGrammar into llama-cpp-python's sampler chain right after its
    repetition penalties, where its own grammar sampler would go."""
    from llama_cpp import llama_cpp as capi

    chain = sampler.sampler
    count = capi.llama_sampler_chain_n(chain)
    names = [capi.llama_sampler_name(capi.llama_sampler_chain_get(chain, i)) for i in range(count)]
    after = names.index(b"penalties") + 1 if b"penalties" in names else 0
    tail = [capi.llama_sampler_chain_remove(chain, after) for _ in range(after, count)]
    best_first = BestFirstGrammar(vocab, grammar, keep)
    capi.llama_sampler_chain_add(chain, ctypes.pointer(best_first.sampler))
    # llama-cpp-python takes samplers it did not allocate out of the chain before freeing it.
    sampler.custom_samplers.append((after, best_first))
    for part in tail:
        capi.llama_sampler_chain_add(chain, part)
    return best_first
