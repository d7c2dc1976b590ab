"""What a structured answer must be: a Pydantic model, or any type pydantic validates.

``Invoice`` (a Pydantic model), ``list[Invoice]``, ``Literal["yes", "no"]``, ``int``,
``Annotated[str, Field(max_length=20)]``, a TypedDict or a dataclass all work, through one
TypeAdapter. Providers hold answers to an object schema (OpenAI's strict mode and Anthropic's
tools need one), so a type whose schema is not an object travels wrapped in one with a
single key (``{"items": [...]}`` for a list, ``{"value": ...}`` otherwise) and is unwrapped
here: the caller only ever sees the type it asked for.
"""

from __future__ import annotations

import json
import re
from functools import cached_property, lru_cache
from types import UnionType
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from tether.errors import ConfigError

T = TypeVar("T")


def _display(output: Any) -> str:
    """``list[Invoice]``, not ``list[app.models.Invoice]``, for messages."""
    if isinstance(output, type) and not get_args(output):
        return output.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", repr(output))


def _name(output: Any) -> str:
    """A name providers accept (letters, digits, _ and -): ``list_Invoice``, ``int_or_str``."""
    origin, args = get_origin(output), get_args(output)
    if origin is Annotated:
        return _name(args[0])
    if origin is Literal:
        return "Literal"
    if isinstance(output, type) and not args:
        return output.__name__
    if origin in (Union, UnionType):
        return "_or_".join(_name(arg) for arg in args if arg is not type(None))
    if origin is not None:
        return "_".join([getattr(origin, "__name__", "T"), *(_name(arg) for arg in args)])
    return "Answer"


def _is_list(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array"


class OutputType(Generic[T]):
    """The answer's type with what every strategy needs of it: a name, the JSON schema to
    send, and parsing of the answer's text back into the type."""

    def __init__(self, output: Any) -> None:
        self.output = output
        try:
            self.adapter: TypeAdapter[T] = TypeAdapter(output)
            inner = self.adapter.json_schema()
        except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
            raise ConfigError(
                f"output={_display(output)!r} is not a type pydantic can validate ({exc}); "
                "pass a Pydantic model, or a type such as list[Model], Literal[...] or int"
            ) from exc
        self.display = _display(output)
        self.name = re.sub(r"[^A-Za-z0-9_-]+", "_", _name(output)).strip("_")[:64] or "Answer"
        self.key: str | None = None
        if inner.get("type") != "object":
            self.key = "items" if _is_list(inner) else "value"
        self._inner = inner

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The object schema sent to the provider (the type's own, or its wrapper)."""
        if self.key is None:
            return self._inner
        inner = dict(self._inner)
        defs = inner.pop("$defs", None)
        wrapper: dict[str, Any] = {
            "type": "object",
            "properties": {self.key: inner},
            "required": [self.key],
        }
        if defs:
            wrapper["$defs"] = defs
        return wrapper

    @property
    def description(self) -> str | None:
        """The type's docstring, which pydantic puts in its schema."""
        found = self._inner.get("description")
        return str(found) if found else None

    def parse(self, text: str) -> T:
        """The answer in ``text``: the JSON itself, or the first JSON object within prose or
        a code fence. Raises ValueError (json or pydantic) saying what is wrong, and
        ConfigError when the type itself cannot validate a value its schema allows."""
        try:
            value = self._json(text)
            if self.key is not None:
                if not isinstance(value, dict) or self.key not in value:
                    raise ValueError(f'the answer must be an object with the key "{self.key}"')
                value = value[self.key]
            return self.adapter.validate_python(value)
        except TypeError as exc:  # pydantic: a constraint that does not fit the field's type
            raise ConfigError(
                f"{self.display} cannot validate this answer ({exc}): a constraint sits on a "
                "field whose type it does not fit, such as max_length on `int | str`; put it "
                "on the branch it is for (`int | Annotated[str, Field(max_length=12)]`)"
            ) from exc

    def _json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            start = text.find("{")
            if start < 0:
                raise ValueError("the answer holds no JSON object") from None
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value


def error_lines(exc: Exception) -> list[str]:
    """One line per problem, located in the caller's type (the wrapper key left out)."""
    if isinstance(exc, ValidationError):
        return [
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        ]
    return [str(exc)]


@lru_cache(maxsize=512)  # bounded: a server may see a new schema with every request
def _cached(output: Any) -> OutputType[Any]:
    return OutputType(output)


def output_type(output: Any) -> OutputType[Any]:
    """The OutputType for ``output``, built once per type (an unhashable one each time)."""
    try:
        return _cached(output)
    except TypeError:  # e.g. Annotated with unhashable metadata
        return OutputType(output)


__all__ = ["OutputType", "error_lines", "output_type"]
