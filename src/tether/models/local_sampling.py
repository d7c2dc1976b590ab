"""Samplers tether adds to llama-cpp-python's sampler chain for local models.

``BestFirstGrammar``: grammar-constrained sampling that checks the likely tokens first.
llama.cpp's grammar sampler checks every token of the vocabulary against the grammar at every
step (49,152 for SmolLM2), which costs about 40% of decoding speed. Sampling only ever keeps
the best few valid tokens: one for greedy decoding, ``top_k`` otherwise. So this sampler
checks the highest-scoring candidates first and stops once it has enough valid ones; only
when they run out does it check the whole vocabulary, as llama.cpp would. The tokens it keeps
are exactly the ones the full check would keep, so the output is the same, only sooner.

``LogprobRecorder``: each chosen token's log-probability under the model's own distribution,
which llama-cpp-python only reports for models loaded with every position's logits kept.
"""

from __future__ import annotations

import ctypes
import json
import weakref
from functools import lru_cache
from typing import Any, cast

from tether.errors import UnsupportedParameter
from tether.models.json_guard import COMMA, TOKEN_KINDS, JsonGuard

FIRST_LOOK = 64  # candidates checked before falling back to the whole vocabulary


# llama-cpp-python's converter lets a JSON string hold raw control characters (a newline,
# say), which no JSON parser accepts; JSON's own rule excludes them.
LOOSE_CHAR = r'[^"\\]'
JSON_CHAR = r'[^"\\\x7F\x00-\x1F]'


@lru_cache(maxsize=256)  # bounded: a server may see a new schema with every request
def _grammar(schema_json: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        loose = LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:  # llama.cpp names the construct it cannot convert
        raise UnsupportedParameter(
            f"llama.cpp cannot turn this JSON schema into a grammar ({exc}); simplify the "
            "schema, or use strategy='repair'"
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


class PythonSampler:
    """A llama.cpp sampler implemented in Python, for a sampler chain: subclasses define
    ``apply`` (on the candidates) and ``accept`` (the token chosen)."""

    name = b"tether"

    def __init__(self) -> None:
        import numpy as np
        from llama_cpp import llama_cpp as capi

        self.capi = capi
        # llama_token_data {int32 id; float logit; float p;} as numpy sees it
        self.dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)])
        assert self.dtype.itemsize == ctypes.sizeof(capi.llama_token_data)
        iface = capi.llama_sampler_i()
        # The callbacks are kept on self, as llama.cpp holds bare pointers to them, and reach
        # self weakly, so a sampler is freed as soon as its chain lets go of it.
        me = weakref.ref(self)

        def apply(_smpl: Any, cur_p: Any) -> None:
            if (sampler := me()) is not None:
                sampler.apply(cur_p)

        def accept(_smpl: Any, token: int) -> None:
            if (sampler := me()) is not None:
                sampler.accept(token)

        def reset(_smpl: Any) -> None:
            if (sampler := me()) is not None:
                sampler.reset()

        name = self.name
        self._callbacks = (
            capi.llama_sampler_i_name(lambda _smpl: name),
            capi.llama_sampler_i_accept(accept),
            capi.llama_sampler_i_apply(apply),
            capi.llama_sampler_i_reset(reset),
        )
        iface.name, iface.accept, iface.apply, iface.reset = self._callbacks
        self._iface = iface
        self.sampler = capi.llama_sampler(iface=ctypes.pointer(iface), ctx=None)

    def candidates(self, cur_p: Any) -> Any:
        """The candidate array as a numpy record array (id, logit, p), written through."""
        import numpy as np

        array = cur_p.contents
        buffer = (self.capi.llama_token_data * int(array.size)).from_address(
            ctypes.addressof(array.data.contents)
        )
        return np.frombuffer(cast(Any, buffer), dtype=self.dtype)

    def apply(self, cur_p: Any) -> None:
        raise NotImplementedError

    def accept(self, token: int) -> None:
        pass

    def reset(self) -> None:
        pass


class TokenTexts:
    """Each token's text in one vocabulary, and which tokens are of each kind the JSON guard
    names (tether.models.json_guard.TOKEN_KINDS). Built once per loaded model."""

    def __init__(self, pieces: list[bytes]) -> None:
        import numpy as np

        self.pieces = pieces
        self.quote = pieces.index(b'"')
        self.kinds = {
            kind: np.array([pattern.match(p) is not None for p in pieces])
            for kind, pattern in TOKEN_KINDS.items()
        }


class BestFirstGrammar(PythonSampler):
    """Applies ``grammar`` to the best ``keep`` candidates, checking them best first (all of
    them when ``keep`` is None); see the module docstring. With a ``guard``, the tokens kept
    are narrowed to those that end the current value whenever the guard says it should end
    (tether.models.json_guard) and the grammar allows such a token there."""

    name = b"tether-best-first-grammar"

    def __init__(
        self,
        vocab: Any,
        grammar: Any,
        keep: int | None,
        guard: JsonGuard | None = None,
        texts: TokenTexts | None = None,
    ) -> None:
        import numpy as np

        super().__init__()
        capi = self.capi
        self.keep = keep
        self.guard = guard
        self.texts = texts
        if guard is not None and texts is None:
            raise ValueError("a guard needs the vocabulary's token texts")
        self.grammar = capi.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self.grammar:
            raise UnsupportedParameter(
                "llama.cpp could not parse the grammar built from the schema"
            )
        self.fallbacks = 0  # steps that needed the whole vocabulary checked
        self.steps = 0
        self.ended = 0  # steps where the guard made a value end
        self.folded = 0  # closing braces inside a string read as its end
        self.failure: Exception | None = None  # the first step that fell back to the grammar
        self._probe = (capi.llama_token_data * FIRST_LOOK)()
        self._probe_array = capi.llama_token_data_array(
            data=self._probe, size=0, selected=-1, sorted=False
        )
        probe_view = np.frombuffer(cast(Any, self._probe), dtype=self.dtype)
        self._probe_ids, self._probe_logits = probe_view["id"], probe_view["logit"]

    def accept(self, token: int) -> None:
        self.capi.llama_sampler_accept(self.grammar, token)
        if self.guard is not None and self.texts is not None:
            self.guard.accept(self.texts.pieces[token])

    def reset(self) -> None:
        self.capi.llama_sampler_reset(self.grammar)
        if self.guard is not None:
            self.guard.reset()

    def apply(self, cur_p: Any) -> None:
        try:
            self._apply_best_first(cur_p)
        except Exception as exc:  # ctypes would swallow it, leaving the step unconstrained
            self.failure = self.failure or exc  # the provider warns of it after the call
            self.capi.llama_sampler_apply(self.grammar, cur_p)

    def _apply_best_first(self, cur_p: Any) -> None:
        import numpy as np

        self.steps += 1
        view = self.candidates(cur_p)
        size = len(view)
        logits = view["logit"]
        look = min(FIRST_LOOK, size) if self.keep is not None else 0
        if look:
            best = np.argpartition(-logits, look - 1)[:look] if look < size else np.arange(size)
            best.sort()  # equal logits in array order, as llama.cpp's greedy sampler breaks ties
            best = best[np.argsort(-logits[best], kind="stable")]
            ids, probe = self._probe_ids[:look], self._probe_logits[:look]
            ids[:] = view["id"][best]
            probe[:] = logits[best]
            self._probe_array.size = look
            self._probe_array.selected = -1
            self._probe_array.sorted = False
            self.capi.llama_sampler_apply(self.grammar, ctypes.byref(self._probe_array))
            guarded = self._guard(ids, probe)
            valid = np.flatnonzero(np.isfinite(probe))
            if guarded or (guarded is None and (len(valid) >= (self.keep or 0) or look == size)):
                kept = valid[np.argsort(-probe[valid], kind="stable")][: self.keep]
                logits[:] = -np.inf
                logits[best[kept]] = probe[kept]
                self._settle(cur_p)
                return
            self.fallbacks += 1  # too few of the best are allowed here: check them all
        self.capi.llama_sampler_apply(self.grammar, cur_p)
        if self._guard(view["id"], logits):
            self._settle(cur_p)

    def _guard(self, ids: Any, logits: Any) -> bool | None:
        """Apply the guard, in place, to candidates the grammar has checked (refused ones at
        -inf): inside free text, a closing brace or bracket is read as the end of the string
        (its probability goes to the closing quote); when a value should end, only the tokens
        that end it stay. True when it narrowed the candidates, False when it wanted to but
        no allowed token fits (the caller then looks further), None when it had nothing to do.
        """
        import numpy as np

        if self.guard is None or self.texts is None:
            return None
        allowed = np.isfinite(logits)
        if not allowed.any():
            return None
        folded = False
        if kinds := self.guard.folds():
            closers = allowed & np.logical_or.reduce([self.texts.kinds[k][ids] for k in kinds])
            quotes = np.flatnonzero(allowed & (ids == self.texts.quote))
            if closers.any() and quotes.size:
                logits[quotes[0]] = np.logaddexp.reduce([logits[quotes[0]], *logits[closers]])
                logits[closers] = -np.inf
                allowed &= ~closers
                self.folded += 1
                folded = True
        constraint = self.guard.constraint()
        if constraint is None:
            return True if folded else None
        fits = allowed.copy()
        if constraint.require is not None:
            fits &= self.texts.kinds[constraint.require][ids]
        if constraint.check_lists:
            for index in np.flatnonzero(fits & self.texts.kinds[COMMA][ids]):
                if self.guard.overruns(self.texts.pieces[ids[index]]):
                    fits[index] = False
        if (fits == allowed).all():
            return True if folded else None
        if not fits.any():
            return False
        logits[~fits] = -np.inf
        self.ended += 1
        return True

    def _settle(self, cur_p: Any) -> None:
        array = cur_p.contents
        array.sorted = False
        array.selected = -1

    def close(self) -> None:
        if self.grammar:
            self.capi.llama_sampler_free(self.grammar)
            self.grammar = None

    def __del__(self) -> None:
        self.close()


class LogprobRecorder(PythonSampler):
    """Records each chosen token's natural-log probability under the model's raw distribution
    (first in the chain: before penalties, grammar and temperature), and the ``top`` most
    likely tokens at that step. Changes nothing."""

    name = b"tether-logprobs"

    def __init__(self, top: int) -> None:
        super().__init__()
        self.top = top
        self.records: list[tuple[int, float, list[tuple[int, float]]]] = []
        self._step: Any = None  # (ids, logits, log of the normaliser) of the current step

    def apply(self, cur_p: Any) -> None:
        import numpy as np

        view = self.candidates(cur_p)
        logits = view["logit"].astype(np.float64)
        peak = logits.max()
        log_total = peak + np.log(np.exp(logits - peak).sum())
        self._step = (view["id"].copy(), logits, log_total)

    def accept(self, token: int) -> None:
        import numpy as np

        if self._step is None:
            return
        ids, logits, log_total = self._step
        self._step = None
        where = np.flatnonzero(ids == token)
        if not len(where):
            return
        top: list[tuple[int, float]] = []
        if self.top:
            best = np.argpartition(-logits, self.top - 1)[: self.top]
            best = best[np.argsort(-logits[best], kind="stable")]
            top = [(int(ids[i]), float(logits[i] - log_total)) for i in best]
        self.records.append((token, float(logits[where[0]] - log_total), top))


def insert(sampler: Any, position: int, python_sampler: PythonSampler) -> None:
    """Put ``python_sampler`` into llama-cpp-python's sampler chain at ``position``."""
    from llama_cpp import llama_cpp as capi

    chain = sampler.sampler
    count = capi.llama_sampler_chain_n(chain)
    tail = [capi.llama_sampler_chain_remove(chain, position) for _ in range(position, count)]
    capi.llama_sampler_chain_add(chain, ctypes.pointer(python_sampler.sampler))
    for part in tail:
        capi.llama_sampler_chain_add(chain, part)
    # llama-cpp-python takes samplers it did not allocate out of the chain, by index and last
    # first, before freeing it: those behind the new one moved up by one.
    moved = [(i + 1 if i >= position else i, obj) for i, obj in sampler.custom_samplers]
    sampler.custom_samplers[:] = sorted([*moved, (position, python_sampler)], key=lambda e: e[0])


def after_penalties(sampler: Any) -> int:
    """Where llama-cpp-python puts its grammar sampler: right after the repetition penalties."""
    from llama_cpp import llama_cpp as capi

    chain = sampler.sampler
    python_samplers = {index for index, _ in sampler.custom_samplers}  # they may have no name
    for index in range(capi.llama_sampler_chain_n(chain)):
        if index in python_samplers:
            continue
        if capi.llama_sampler_name(capi.llama_sampler_chain_get(chain, index)) == b"penalties":
            return index + 1
    return 0
