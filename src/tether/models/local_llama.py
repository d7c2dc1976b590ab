"""llama.cpp in memory: one model per file and settings, each used from its own thread.

``CountingLlama`` is llama-cpp-python's ``Llama`` with what tether needs of it: token counts
for streams, a stop that frees the model before its next token, tether's samplers in its
chain (tether.models.local_sampling: a grammar applied best candidates first with the JSON
guard, a log-probability recorder) and an end to a text answer that loops.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from tether.errors import BadRequest, ConfigError, ModelFileError
from tether.models.json_guard import JsonGuard
from tether.models.local_sampling import (
    BestFirstGrammar,
    LogprobRecorder,
    TokenTexts,
    after_penalties,
    insert,
    keep_count,
)
from tether.models.repetition import is_looping
from tether.types import TokenLogprob

# A text answer whose end repeats one stretch of up to 128 tokens four times over, across 64
# tokens at least, is looping: it stops there, finish reason "repetition". Ordinary answers
# (lists, tables, code, a refrain) stay well short of that.
LOOP = {"max_period": 128, "min_repeats": 4, "min_length": 64}


class Loaded:
    """One llama.cpp model in memory, used from one dedicated thread.

    One thread serialises use of the model (llama.cpp contexts are not thread-safe) and keeps
    one OpenMP team: calls from changing threads would each start a team of their own, whose
    idle threads spin and steal the cores from the one at work.
    """

    def __init__(self, path: Path, n_ctx: int, threads: int | None) -> None:
        llama_class = _counting_llama()
        try:
            # The thread count covers prompt processing too: llama.cpp's own default for
            # it is every core, which a busy machine punishes (an 800-token prompt ran at
            # 48 tokens/s on 2 threads beside another process, 145 on 1).
            self._llama = llama_class(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except ValueError as exc:
            raise ModelFileError(
                f"llama.cpp could not load {path} ({exc}); the file is corrupt, truncated or "
                "of an architecture this llama-cpp-python does not support"
            ) from exc
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-llama")
        self.n_ctx = n_ctx
        self.path = path
        self.closed = False

    @property
    def llama(self) -> Any:
        """The llama.cpp model; ConfigError once it is closed (its memory is freed: touching
        it would crash the process)."""
        if self.closed:
            raise ConfigError(
                f"the local model {self.path.name} was closed; build the model again "
                "(tether.model(...)) to load it anew"
            )
        return self._llama

    def count_prompt(self, messages: list[dict[str, Any]], tools: Any) -> int:
        prompt = self._formatter()(messages=messages, tools=tools).prompt
        return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

    def close(self) -> None:
        """Let the calls already on its thread finish, end the thread, free the model."""
        self.thread.shutdown(wait=True)
        self.closed = True
        self._llama.close()
        # The formatter cache holds every loaded model: clearing it lets this one go (the
        # others build theirs again on their next call).
        Loaded._formatter.cache_clear()

    @cache  # noqa: B019 - one formatter per loaded model, cleared when one is closed
    def _formatter(self) -> Any:
        from llama_cpp import llama_chat_format

        llama = self.llama
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise BadRequest(f"{llama.model_path} has no chat template in its GGUF metadata")
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
            bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
            stop_token_ids=[eos_id],
        )


@cache
def _counting_llama() -> Any:
    """A Llama that counts the tokens it generates and can be told to stop.

    llama-cpp-python reports usage only on non-streamed completions; counting in
    ``generate`` gives the same figures (end-of-generation tokens are not counted). Setting
    ``stop`` ends the generation before its next token, as if it had reached max_tokens:
    that is how a cancelled call frees the model at once. While ``watch_loops`` is set, an
    answer that starts repeating itself (``LOOP``) ends as if the model had ended it, so the
    plain and the streamed completion both keep the text so far; ``looped`` tells that end
    from the model's own. Its sampler chain gets tether's samplers
    (tether.models.local_sampling): a grammar applied best candidates first (same tokens,
    less work per step), and, while ``record_logprobs`` is set, a recorder of each token's
    log-probability with that many alternatives.
    """
    from llama_cpp import Llama
    from llama_cpp import llama_cpp as capi

    class CountingLlama(Llama):
        last_prompt_tokens = 0
        last_completion_tokens = 0
        stop: threading.Event | None = None
        record_logprobs: int | None = None
        guard: JsonGuard | None = None  # for the next grammar-constrained call
        watch_loops = False
        looped = False
        best_first: BestFirstGrammar | None = None  # the last ones installed, for reading
        recorder: LogprobRecorder | None = None
        _texts: TokenTexts | None = None

        def token_texts(self) -> TokenTexts:
            if self._texts is None:
                pieces = [bytes(self.detokenize([i])) for i in range(self._n_vocab)]
                self._texts = TokenTexts(pieces)
            return self._texts

        def _init_sampler(  # type: ignore[override]
            self, grammar: Any = None, **kwargs: Any
        ) -> Any:
            keep = None
            guard = self.guard if grammar is not None else None
            if grammar is not None:
                keep = keep_count(
                    kwargs.get("temp", 0.8),
                    kwargs.get("top_k", 40),
                    kwargs.get("mirostat_mode", 0),
                    self._n_vocab,
                )
            if keep is None and guard is None:
                sampler = super()._init_sampler(grammar=grammar, **kwargs)
            else:
                sampler = super()._init_sampler(**kwargs)
                texts = self.token_texts() if guard is not None else None
                self.best_first = BestFirstGrammar(self._model.vocab, grammar, keep, guard, texts)
                insert(sampler, after_penalties(sampler), self.best_first)
            if self.record_logprobs is not None:
                self.recorder = LogprobRecorder(self.record_logprobs)
                insert(sampler, 0, self.recorder)
            return sampler

        def generate(  # type: ignore[override]
            self, tokens: Any, *args: Any, **kwargs: Any
        ) -> Iterator[int]:
            self.last_prompt_tokens = len(tokens)
            self.last_completion_tokens = 0
            self.looped = False
            answer: list[int] = []
            for token in super().generate(tokens, *args, **kwargs):
                if self.stop is not None and self.stop.is_set():
                    return
                if not capi.llama_vocab_is_eog(self._model.vocab, token):
                    self.last_completion_tokens += 1
                    answer.append(token)
                yield token
                if self.watch_loops and is_looping(answer, **LOOP):
                    self.looped = True
                    yield self.token_eos()  # not counted, and never decoded
                    return

    return CountingLlama


_loaded: dict[tuple[Path, int, int | None], Loaded] = {}
_load_lock = threading.Lock()


def load(path: Path, n_ctx: int, threads: int | None) -> Loaded:
    with _load_lock:
        key = (path, n_ctx, threads)
        if key not in _loaded or _loaded[key].closed:
            _loaded[key] = Loaded(path, n_ctx, threads)
        return _loaded[key]


def unload(loaded: Loaded) -> None:
    """Forget ``loaded``, so that a later call loads the file again, and free it."""
    with _load_lock:
        for key in [key for key, value in _loaded.items() if value is loaded]:
            del _loaded[key]
    loaded.close()


def logprobs_of(llama: Any, text: str) -> list[TokenLogprob] | None:
    """What the recorder kept of the last generation, lined up with the answer's ``text``: a
    character split over several tokens is one entry (their log-probabilities summed), and
    tokens past the text (cut by a stop string, or end-of-generation) are left out."""
    recorder = llama.recorder
    if recorder is None:
        return None
    vocab = llama._model.vocab

    def piece(token: int) -> bytes:
        return bytes(llama.detokenize([token], special=True))

    entries: list[TokenLogprob] = []
    pending, pending_logprob = b"", 0.0
    pending_top: list[tuple[int, float]] | None = None
    for token, logprob, top in recorder.records:
        if _is_eog(vocab, token):
            continue
        pending += piece(token)
        pending_logprob += logprob
        pending_top = top if pending_top is None else pending_top
        try:
            spelled = pending.decode("utf-8")
        except UnicodeDecodeError:
            if len(pending) < 4:
                continue  # a character's first bytes: its last ones are still to come
            spelled = pending.decode("utf-8", errors="replace")
        alternatives = [(piece(t).decode("utf-8", errors="replace"), lp) for t, lp in pending_top]
        entries.append(TokenLogprob(token=spelled, logprob=pending_logprob, top=alternatives))
        pending, pending_logprob, pending_top = b"", 0.0, None
    kept, length = [], 0
    for entry in entries:
        if length >= len(text):
            break
        kept.append(entry)
        length += len(entry.token)
    return kept


def _is_eog(vocab: Any, token: int) -> bool:
    from llama_cpp import llama_cpp as capi

    return bool(capi.llama_vocab_is_eog(vocab, token))
