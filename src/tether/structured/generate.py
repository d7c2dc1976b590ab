"""One loop for every strategy: ask, check the finish, parse, validate, feed errors back."""

from __future__ import annotations

import json
import warnings
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from tether import _sync
from tether.errors import ConfigError, OutputInvalid, Refused, UnsupportedParameter
from tether.models.base import Model, Prompt, build_request, check_keywords
from tether.types import Message, OutputSchema, Request, Response, Usage

T = TypeVar("T", bound=BaseModel)
Strategy = Literal["auto", "native", "grammar", "repair"]


def instructions(schema: dict[str, Any]) -> str:
    """What the repair strategy tells a model that cannot be constrained."""
    return (
        "Answer with one JSON object and nothing else: no prose, no code fence. "
        f"It must follow this JSON schema:\n{json.dumps(schema)}"
    )


def parse(text: str, output: type[T]) -> T:
    """The object in ``text``: the JSON itself, or the first JSON object within prose or a
    code fence. Raises ValueError (json or pydantic) saying what is wrong, and ConfigError
    when ``output`` itself cannot validate a value its schema allows."""
    try:
        try:
            return output.model_validate_json(text)
        except ValidationError as exc:
            if not any(e["type"] == "json_invalid" for e in exc.errors()):
                raise
        start = text.find("{")
        if start < 0:
            raise ValueError("the answer holds no JSON object")
        value, _ = json.JSONDecoder().raw_decode(text[start:])
        return output.model_validate(value)
    except TypeError as exc:  # pydantic: a constraint that does not fit the field's type
        raise ConfigError(
            f"{output.__name__} cannot validate this answer ({exc}): a constraint sits on a "
            "field whose type it does not fit, such as max_length on `int | str`; put it on "
            "the branch it is for (`int | Annotated[str, Field(max_length=12)]`)"
        ) from exc


def error_lines(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        ]
    return [str(exc)]


def request_for(request: Request, output: type[T], strategy: Strategy) -> Request:
    if strategy == "repair":
        schema = output.model_json_schema()
        rest = [m for m in request.messages if m.role != "system"]
        system = "\n\n".join(
            [*(m.text for m in request.messages if m.role == "system"), instructions(schema)]
        )
        return request.model_copy(update={"messages": [Message.system(system), *rest]})
    spec = OutputSchema(name=output.__name__, schema=output.model_json_schema())
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


async def _answer(model: Model, request: Request) -> Response:
    """One call; a refusal or a cut-off answer ends the loop at once."""
    response = await model.request(request)
    raise_if_refused(model, response)
    if response.finish_reason == "length":
        raise OutputInvalid(
            f"{model.id} was cut off by max_tokens before the JSON was complete; raise max_tokens",
            text=response.text,
            errors=["cut off by max_tokens"],
            usage=response.usage,
        )
    return response


def _with_feedback(request: Request, answer: str, errors: list[str]) -> Request:
    feedback = (
        "That answer is not valid:\n"
        + "\n".join(f"- {e}" for e in errors)
        + "\nAnswer again with the corrected JSON object only."
    )
    messages = [*request.messages, Message.assistant(answer), Message.user(feedback)]
    return request.model_copy(update={"messages": messages})


async def agenerate(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    **params: Any,
) -> T:
    """A validated ``output`` from ``model``. Raises OutputInvalid after ``attempts`` tries
    (with every error, the last text and the usage of all attempts), OutputInvalid at once
    when max_tokens cuts the answer, Refused when the model declines, and
    UnsupportedParameter when ``native``/``grammar`` is asked of a model without it."""
    found, _ = await agenerate_with_response(
        model, prompt, output, strategy=strategy, attempts=attempts, **params
    )
    return found


async def agenerate_with_response(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    **params: Any,
) -> tuple[T, Response]:
    """As agenerate, with the Response the object came from (its logprobs, say)."""
    check_keywords(params, "generate", ("output", "strategy", "attempts"))
    base = build_request(prompt, **params)
    request = request_for(base, output, "repair" if strategy == "repair" else "native")
    errors: list[str] = []
    usage = Usage()
    response: Response | None = None
    for number in range(1, attempts + 1):
        try:
            response = await _answer(model, request)
        except UnsupportedParameter as exc:
            if strategy != "auto" or request.output is None:
                raise
            warn_falling_back(model, exc)
            request = request_for(base, output, "repair")
            response = await _answer(model, request)
        except OutputInvalid as exc:
            total = usage + exc.usage if isinstance(exc.usage, Usage) else usage
            raise OutputInvalid(
                str(exc), text=exc.text, errors=[*errors, *exc.errors], usage=total
            ) from exc
        usage += response.usage
        try:
            return parse(response.text, output), response
        except ValueError as exc:  # bad JSON or a failed validation: say so, try again
            found = error_lines(exc)
            errors += [f"attempt {number}: {e}" for e in found]
            request = _with_feedback(request, response.text, found)
    raise OutputInvalid(
        f"{model.id} gave no valid {output.__name__} in {attempts} attempts; the errors are "
        "attached (.errors)",
        text=response.text if response else "",
        errors=errors,
        usage=usage,
    )


def generate(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    attempts: int = 3,
    **params: Any,
) -> T:
    """Sync twin of agenerate; works inside a running event loop."""
    return _sync.run(
        agenerate(model, prompt, output, strategy=strategy, attempts=attempts, **params)
    )
