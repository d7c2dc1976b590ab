"""Partial objects: what a streamed structured answer holds so far, typed.

``Partial[Receipt]`` is Receipt with every field optional (None until the model writes it),
nested models partial too and constraints dropped, since a value still being written may not
meet them yet: a string in progress shows as far as it has come. Streams yield instances of
it as the JSON grows, then the validated Receipt itself.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import lru_cache
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Generic,
    Optional,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

import pydantic_core
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model
from typing_extensions import is_typeddict

from tether.structured.output import OutputType

T = TypeVar("T")
_building: set[type[BaseModel]] = set()
_SEQUENCES = (list, set, frozenset, tuple)


def partial_type(output: Any) -> Any:
    """The type of ``output`` as streamed so far (see the module docstring), made once per
    type (a type with unhashable metadata, each time)."""
    try:
        return _partial_once(output)
    except TypeError:  # e.g. Annotated[list[str], {"x": 1}]
        return _partial(output)


@lru_cache(maxsize=512)
def _partial_once(output: Any) -> Any:
    return _partial(output)


def _partial(output: Any) -> Any:
    origin, args = get_origin(output), get_args(output)
    if isinstance(output, TypeVar):
        return Any
    if origin is Annotated:
        return partial_type(args[0])
    if isinstance(output, type) and issubclass(output, BaseModel):
        return _partial_model(output)
    if is_typeddict(output) or dataclasses.is_dataclass(output):
        return dict[str, Any]
    if origin in _SEQUENCES:
        item = args[0] if args and (origin is not tuple or args[-1] is Ellipsis) else Any
        return list[partial_type(item)]  # type: ignore[misc]
    if origin is dict and len(args) == 2:
        return dict[args[0], partial_type(args[1])]  # type: ignore[misc, valid-type]
    if origin in (Union, UnionType):
        return Union[tuple(partial_type(arg) for arg in args)]  # noqa: UP007
    return output  # Literal, enums, numbers, strings, dates: as they are


def _partial_model(model: type[BaseModel]) -> Any:
    if model in _building:
        return Any  # a model that contains itself: its inner levels stay untyped
    _building.add(model)
    try:
        fields: dict[str, Any] = {
            name: (
                Optional[partial_type(cast(Any, info.annotation))],  # noqa: UP045
                Field(default=None, alias=info.alias, description=info.description),
            )
            for name, info in model.model_fields.items()
        }
        partial = create_model(
            f"Partial{model.__name__}",
            __module__=model.__module__,
            __doc__=f"{model.__name__} as streamed so far: fields not yet written are None.",
            **fields,
        )
    finally:
        _building.discard(model)
    return partial


class Partial(Generic[T]):
    """``Partial[Receipt]``: the class of Receipt's partial objects in a stream.

    At run time the subscript gives the generated pydantic class (``PartialReceipt``), for
    ``isinstance`` checks and annotations alike."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...

    def __class_getitem__(cls, output: Any) -> Any:
        return partial_type(output)


def _adapter(output: Any) -> TypeAdapter[Any]:
    try:
        return _adapter_once(output)
    except TypeError:
        return TypeAdapter(partial_type(output))


@lru_cache(maxsize=512)
def _adapter_once(output: Any) -> TypeAdapter[Any]:
    return TypeAdapter(partial_type(output))


def partial_value(output: OutputType[Any], text: str) -> Any:
    """The partial answer in ``text``, unfinished JSON; None before its object opens. A value
    the partial type cannot take yet (half a date, say) is left out until it can."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = pydantic_core.from_json(text[start:], allow_partial="trailing-strings")
    except ValueError:
        return None
    if output.key is not None:
        data = data.get(output.key) if isinstance(data, dict) else None
        if data is None:
            return None
    return _lenient(_adapter(output.output), data)


def _lenient(adapter: TypeAdapter[Any], data: Any, rounds: int = 8) -> Any:
    """Validate ``data``, dropping what fails, a few times over; None if it never fits."""
    data = copy.deepcopy(data)
    for _ in range(rounds):
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            if not any(_drop(data, error["loc"]) for error in exc.errors()):
                return None
    return None


def _drop(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Remove the value at ``loc`` (a pydantic error location) from ``data``."""
    *path, last = loc or ("",)
    for step in path:
        if not _holds(data, step):
            return False
        data = data[step]
    if not _holds(data, last):
        return False
    del data[last]
    return True


def _holds(data: Any, step: int | str) -> bool:
    if isinstance(data, dict):
        return step in data
    return isinstance(data, list) and isinstance(step, int) and step < len(data)


__all__ = ["Partial", "partial_type", "partial_value"]
