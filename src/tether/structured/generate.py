"""One loop for every strategy: ask, check the finish, parse, validate, feed errors back."""

from __future__ import annotations

import json
import warnings
from typing import Any, Literal, TypeVar, overload

from tether import _sync
from tether.errors import OutputInvalid, Refused, UnsupportedParameter
from tether.models.base import Model, Prompt, build_request, check_keywords
from tether.structured.output import OutputType, error_lines, output_type
from tether.types import Bounds, Message, OutputSchema, Request, Response, Usage

T = TypeVar("T")
Strategy = Literal["auto", "native", "grammar", "repair"]
Mode = Literal["native", "grammar"]


def instructions(schema: dict[str, Any]) -> str:
    """What the repair strategy tells a model that cannot be constrained."""
    return (
        "Answer with one JSON object and nothing else: no prose, no code fence. "
        f"It must follow this JSON schema:\n{json.dumps(schema)}"
    )


@overload
def parse(text: str, output: type[T]) -> T: ...
@overload
def parse(text: str, output: Any) -> Any: ...
def parse(text: str, output: Any) -> Any:
    """The answer in ``text`` as ``output`` (see OutputType.parse)."""
    return output_type(output).parse(text)


def mode_for(model: Model, strategy: Strategy) -> Mode | None:
    """The mechanism a strategy asks of the provider; for ``auto``, the best the model
    declares (native, else grammar), or None to let each model of a chain choose."""
    if strategy == "native" or strategy == "grammar":
        return strategy
    caps = model.capabilities()
    if caps is not None:
        if "native" in caps.structured:
            return "native"
        if "grammar" in caps.structured:
            return "grammar"
    return None


def default_bounds() -> Bounds:
    """The bounds tether.toml sets under [structured.bounds], else Bounds()."""
    from tether.config import load_settings

    return load_settings().structured.bounds


def request_for(
    request: Request,
    output: OutputType[Any],
    strategy: Strategy,
    model: Model,
    bounds: Bounds | None = None,
    strict: bool = True,
) -> Request:
    """``request`` with the answer's schema attached as the strategy asks: as an output
    constraint (``strict``: held to the schema exactly, where the provider distinguishes),
    or (repair) as instructions in the system prompt."""
    if strategy == "repair":
        rest = [m for m in request.messages if m.role != "system"]
        system = "\n\n".join(
            [*(m.text for m in request.messages if m.role == "system"), instructions(output.schema)]
        )
        return request.model_copy(update={"messages": [Message.system(system), *rest]})
    mode = mode_for(model, strategy)
    spec = OutputSchema(
        name=output.name,
        schema=output.schema,
        description=output.description,
        mode=mode,
        strict=strict,
        bounds=None if mode == "native" else (bounds or default_bounds()),
    )
    return request.model_copy(update={"output": spec})


def raise_if_refused(model: Model, response: Response) -> None:
    if response.finish_reason == "refusal":
        raise Refused(f"{model.id} declined to answer: {response.text[:300]}")


def warn_falling_back(model: Model, reason: UnsupportedParameter) -> None:
    """``auto`` met a model, or a schema, that cannot be constrained: say why, then repair."""
    warnings.warn(
        f"{reason}; falling back to strategy='repair' for {model.id}",
        stacklevel=3,
    )


def warn_tightened(model: Model, request: Request) -> None:
    """The answer came from the try with tighter bounds: its strings and lists may have been
    ended at them, which the caller should know."""
    bounds = request.output.bounds if request.output is not None else None
    warnings.warn(
        f"{model.id}: the first answer was cut off by max_tokens; this one came with tighter "
        f"bounds ({bounds.describe() if bounds else 'none'}), which may have shortened its "
        "strings and lists: raise max_tokens to give it room",
        stacklevel=4,
    )


def tightened(request: Request) -> Request | None:
    """The request again with tighter bounds, for one more try after a cut-off answer under a
    grammar; None when it has no bounds to tighten."""
    spec = request.output
    if spec is None or spec.bounds is None or spec.mode != "grammar":
        return None
    tighter = spec.bounds.tighter()
    if tighter is None:
        return None
    return request.model_copy(update={"output": spec.model_copy(update={"bounds": tighter})})


def _cut_off(
    model: Model, request: Request, response: Response, errors: list[str], usage: Usage
) -> OutputInvalid:
    if request.params.max_tokens is None:  # the model's own cap, or its context, ran out
        advice = "set a larger max_tokens, or tighter bounds (bounds=Bounds(...))"
    else:
        advice = f"raise max_tokens (it was {request.params.max_tokens})"
    return OutputInvalid(
        f"{model.id} was cut off before the JSON was complete; {advice}",
        text=response.text,
        errors=[*errors, "cut off by max_tokens"],
        usage=usage,
    )


def _with_feedback(request: Request, answer: str, errors: list[str]) -> Request:
    feedback = (
        "That answer is not valid:\n"
        + "\n".join(f"- {e}" for e in errors)
        + "\nAnswer again with the corrected JSON object only."
    )
    messages = [*request.messages, Message.assistant(answer), Message.user(feedback)]
    return request.model_copy(update={"messages": messages})


async def _first_answer(
    model: Model,
    base: Request,
    output: OutputType[Any],
    strategy: Strategy,
    bounds: Bounds | None,
    strict: bool,
) -> tuple[Request, Response]:
    """The first call; under ``auto``, a model or schema that cannot be constrained falls
    back to repair, with a warning."""
    request = request_for(base, output, strategy, model, bounds, strict)
    try:
        return request, await model.request(request)
    except UnsupportedParameter as exc:
        if strategy != "auto" or request.output is None:
            raise
        warn_falling_back(model, exc)
        request = request_for(base, output, "repair", model)
        return request, await model.request(request)


@overload
async def agenerate(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> T: ...
@overload
async def agenerate(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any: ...
async def agenerate(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any:
    """A validated ``output`` from ``model``: a Pydantic model, or any type pydantic
    validates (``list[Item]``, ``Literal[...]``, ``int``, ``Annotated[...]``).

    Raises OutputInvalid after ``attempts`` tries (with every error, the last text and the
    usage of all attempts), OutputInvalid when max_tokens cuts the answer (under a grammar,
    after one more try with tighter ``bounds``), Refused when the model declines, and
    UnsupportedParameter when ``native``/``grammar`` is asked of a model without it."""
    found, _ = await agenerate_with_response(
        model, prompt, output, strategy=strategy, attempts=attempts, bounds=bounds, **params
    )
    return found


async def agenerate_with_response(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    strict: bool = True,
    **params: Any,
) -> tuple[Any, Response]:
    """As agenerate, with the Response the object came from (its logprobs, say).
    ``strict=False`` (also a keyword of agenerate and generate) asks for the answer without
    strict schema adherence: for a schema outside the provider's strict-mode rules."""
    check_keywords(params, "generate", ("output", "strategy", "attempts", "bounds", "strict"))
    kind = output_type(output)
    base = build_request(prompt, **params)
    request, response = await _first_answer(model, base, kind, strategy, bounds, strict)
    errors: list[str] = []
    usage = Usage()
    number, retried_cut_off = 1, False
    while True:
        usage += response.usage
        raise_if_refused(model, response)
        if response.finish_reason == "length":
            retry = None if retried_cut_off else tightened(request)
            if retry is None:
                raise _cut_off(model, request, response, errors, usage)
            assert retry.output is not None and retry.output.bounds is not None
            errors.append(
                f"attempt {number}: cut off by max_tokens; once more with tighter bounds "
                f"({retry.output.bounds.describe()})"
            )
            request, retried_cut_off = retry, True
        else:
            try:
                found_object = kind.parse(response.text)
            except ValueError as exc:  # bad JSON or a failed validation: say so, try again
                found = error_lines(exc)
                errors += [f"attempt {number}: {e}" for e in found]
                if number >= attempts:
                    break
                number += 1
                request = _with_feedback(request, response.text, found)
            else:
                if retried_cut_off:
                    warn_tightened(model, request)
                return found_object, response
        response = await model.request(request)
    raise OutputInvalid(
        f"{model.id} gave no valid {kind.display} in {attempts} attempts; the errors are "
        "attached (.errors)",
        text=response.text,
        errors=errors,
        usage=usage,
    )


@overload
def generate(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> T: ...
@overload
def generate(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any: ...
def generate(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any:
    """Sync twin of agenerate; works inside a running event loop."""
    return _sync.run(
        agenerate(
            model, prompt, output, strategy=strategy, attempts=attempts, bounds=bounds, **params
        )
    )
