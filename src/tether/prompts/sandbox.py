"""The Jinja2 sandbox prompt templates render in, with a bound on what they may build.

Jinja2's ``ImmutableSandboxedEnvironment`` keeps templates from Python's internals and from
the methods that change the caller's lists, dicts and sets (``items.append``). It does not
bound size: ``{{ 'x' * 10**9 }}`` builds a gigabyte. Here every render has a budget, a few
times the cap on its output: the strings and lists a template builds (operators, method and
filter calls, ``~``, captured blocks such as ``{% set %}`` and macros) are charged to it, and
an operation whose result would pass what is left is refused before it allocates. So are
numbers past ``MAX_NUMBER_BITS`` (``9 ** (9 ** 9)``). The output itself is capped by
``tether.prompts.template.render``, which stops a render as soon as it passes the cap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.nodes import Concat
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

BUILD_FACTOR = 8  # what a render may build, in all, as a multiple of its output cap
MAX_NUMBER_BITS = 1 << 16  # about 20,000 digits: far past any number a prompt shows
NUMBER = re.compile(r"\d+")


class TooLarge(SecurityError):
    """The template tried to build more than its render may."""


@dataclass
class Budget:
    left: int  # characters (or list items) the render may still build

    def spend(self, size: int, what: str) -> None:
        if size > self.left:
            raise TooLarge(
                f"{what} would build {size:,} more, and the render may build only "
                f"{self.left:,} more ({BUILD_FACTOR} times its output cap in all)"
            )
        self.left -= size


_budget: ContextVar[Budget | None] = ContextVar("tether_template_budget", default=None)


@contextmanager
def budget(cap: int) -> Iterator[Budget]:
    """The budget for one render that may output ``cap`` characters."""
    token = _budget.set(Budget(left=cap * BUILD_FACTOR))
    try:
        yield _budget.get()  # type: ignore[misc]
    finally:
        _budget.reset(token)


def spend(size: int, what: str) -> None:
    current = _budget.get()
    if current is None:  # compiling: refusing keeps Jinja2 from folding the operation early
        raise TooLarge(f"{what} is only worked out while rendering")
    current.spend(size, what)


def size_of(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict | set) else 0


def _check_number(bits: int, what: str) -> None:
    if bits > MAX_NUMBER_BITS:
        raise TooLarge(f"{what} would be a number of about {bits:,} bits")


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def shown_size(value: Any, depth: int = 0) -> int:
    """About how long ``str(value)`` is, found without building it: the repr of a list
    holds every item's, and a list of a thousand references to one long string is cheap to
    make and costly to show. Other objects are the caller's own, and counted as nothing."""
    if isinstance(value, str | bytes):
        return len(value) + 3
    if isinstance(value, bool | float) or value is None:
        return 24
    if isinstance(value, int):
        return abs(value).bit_length() * 3 // 10 + 2
    if depth > 20:  # nested that deep, only the caller's data can be: do not walk it all
        return 0
    if isinstance(value, dict):
        return 2 + sum(
            shown_size(k, depth + 1) + shown_size(v, depth + 1) + 4 for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return 2 + sum(shown_size(item, depth + 1) + 2 for item in value)
    return 0


# The width and precision parts of %-style fields and of {}-style format specs.
PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
BRACE_SPEC = re.compile(r"\{[^{}:]*:((?:[^{}]|\{[^{}]*\})*)\}")


def _format_size(template: str, values: Sequence[Any]) -> int:
    """The most ``template % values`` or ``template.format(*values)`` can build: each field
    may show the largest value, at the widest width or precision the template names (or a
    value gives, where a width is taken from the values: ``%*d``, ``{:{}}``)."""
    percent = PERCENT_FIELD.findall(template)
    specs = BRACE_SPEC.findall(template)
    numbers = [n for field in percent for n in field] + NUMBER.findall(" ".join(specs))
    widths = [int(n) for n in numbers if n.isdigit()]
    if "*" in numbers or any("{" in spec for spec in specs):
        widths += [_int(value) for value in values]
    fields = len(percent) + template.count("{")
    largest = max((shown_size(value) for value in values), default=0)
    return len(template) + fields * (largest + max(widths, default=0))


def _replace_size(text: str, old: str, new: str, count: Any) -> int:
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(0, len(new) - len(old))


def text_size(value: Any) -> int:
    """How long ``value`` is as text, without making the text of anything but a string."""
    return len(value) if isinstance(value, str) else shown_size(value)


def _join_size(separator: str, items: list[Any]) -> int:
    return len(separator) * max(0, len(items) - 1) + sum(map(text_size, items))


Args = tuple[Any, ...]
Kwargs = dict[str, Any]


def _arg(args: Args, kwargs: Kwargs, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _padded(text: str, args: Args, kwargs: Kwargs, default: int = 0) -> int:
    return max(len(text), _int(_arg(args, kwargs, 0, "width", default)))


def _indented(text: str, args: Args, kwargs: Kwargs) -> int:
    width = _arg(args, kwargs, 0, "width", 4)
    pad = len(width) if isinstance(width, str) else _int(width)
    return len(text) + (text.count("\n") + 1) * pad


def _wrapped(text: str, args: Args, kwargs: Kwargs) -> int:
    width = max(1, _int(_arg(args, kwargs, 0, "width", 79)))
    wrap = str(_arg(args, kwargs, 2, "wrapstring", None) or "\n")
    return len(text) + (len(text) // width + text.count("\n") + 1) * len(wrap)


def _batched(value: Any, args: Args, kwargs: Kwargs) -> int:
    fill = _arg(args, kwargs, 1, "fill_with", None)
    return size_of(value) + (_int(_arg(args, kwargs, 0, "linecount", 0)) if fill is not None else 0)


def _sliced(value: Any, args: Args, kwargs: Kwargs) -> int:
    return size_of(value) + _int(_arg(args, kwargs, 0, "slices", 0))


def _replaced(text: str, args: Args, kwargs: Kwargs) -> int:
    old, new = str(_arg(args, kwargs, 0, "old", "")), str(_arg(args, kwargs, 1, "new", ""))
    return _replace_size(text, old, new, _arg(args, kwargs, 2, "count", None))


def _formatted(text: str, args: Args, kwargs: Kwargs) -> int:
    return _format_size(text, [*args, *kwargs.values()])


def _format_mapped(text: str, args: Args, kwargs: Kwargs) -> int:
    mapping = args[0] if args else {}
    return _format_size(text, list(mapping.values()) if isinstance(mapping, dict) else [])


Size = Callable[[Any, Args, Kwargs], int]
# What a filter, or a string method, that can build far more than it is given may build at
# most, from (its value, its other arguments, its keyword arguments): charged before it runs.
# The filters that work on text get their value as text (made, and charged, first).
TEXT_FILTERS = frozenset({"center", "indent", "format", "replace", "wordwrap"})
FILTER_SIZES: dict[str, Size] = {
    "center": lambda text, args, kwargs: _padded(text, args, kwargs, 80),
    "indent": _indented,
    "format": _formatted,
    "replace": _replaced,
    "wordwrap": _wrapped,
    "batch": _batched,
    "slice": _sliced,
}
# Filters that show or copy their whole value (as text, JSON, a list of its characters or
# items, escaped): charged what showing the value takes, times what one character may
# become, before they run. A list of a thousand references to one long string is cheap to
# make and costly to turn into text.
SHOWING_FILTERS: dict[str, int] = {
    name: 1
    for name in (
        "string", "tojson", "pprint", "list", "dictsort", "items", "sort", "unique",
        "reverse", "groupby", "sum", "title", "upper", "lower", "capitalize", "trim",
        "striptags", "urlencode", "xmlattr", "wordcount",
    )
} | {"escape": 6, "e": 6, "forceescape": 6, "urlize": 6}  # fmt: skip
STR_METHOD_SIZES: dict[str, Size] = {
    "center": lambda text, args, kwargs: _padded(text, args, kwargs),
    "ljust": lambda text, args, kwargs: _padded(text, args, kwargs),
    "rjust": lambda text, args, kwargs: _padded(text, args, kwargs),
    "zfill": lambda text, args, kwargs: _padded(text, args, kwargs),
    "expandtabs": lambda text, args, kwargs: (
        len(text) + text.count("\t") * _int(_arg(args, kwargs, 0, "tabsize", 8))
    ),
    "replace": _replaced,
    "format": _formatted,
    "format_map": _format_mapped,
}


class _BoundedCode(CodeGenerator):
    """Compiles ``~`` and captured blocks so that what they build is charged to the budget."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.captured()")

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.concat_values((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class Captured(list[Any]):
    """The output of a captured block (``{% set %}``, a macro, a call or filter block)."""

    def append(self, piece: Any) -> None:
        spend(text_size(piece), "a captured block")
        super().append(piece)

    def extend(self, pieces: Any) -> None:
        pieces = list(pieces)
        spend(sum(map(text_size, pieces)), "a captured block")
        super().extend(pieces)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox whose renders stay within their budget (see the module)."""

    code_generator_class = _BoundedCode
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options, finalize=self._shown)
        del self.globals["lipsum"]  # filler text by the thousand paragraphs: no use in a prompt
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}

    def _shown(self, value: Any) -> Any:
        """Every ``{{ value }}`` on its way out: a string is counted by the output cap; what
        showing anything else would build is charged first."""
        if not isinstance(value, str):
            spend(shown_size(value), "showing a value")
        return value

    def captured(self) -> Captured:
        return Captured()

    def concat_values(self, values: tuple[Any, ...]) -> str:
        spend(sum(map(text_size, values)), "'~'")
        return "".join(map(str, values))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        spend(self._binop_size(operator, left, right), f"'{operator}'")
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def _binop_size(operator: str, left: Any, right: Any) -> int:
        """What ``left operator right`` builds, known before building it."""
        numbers = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and numbers and right > 0 and abs(left) > 1:
            _check_number(right * abs(left).bit_length(), "'**'")
        elif operator == "*" and numbers:
            _check_number(abs(left).bit_length() + abs(right).bit_length(), "'*'")
        elif operator == "*":
            sequence, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                return len(sequence) * max(0, times)
        elif operator == "+":
            return size_of(left) + size_of(right)
        elif operator == "%" and isinstance(left, str):
            values = right if isinstance(right, tuple) else (right,)
            return _format_size(left, list(values))
        return 0

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from a template: a string method that can build much from little is
        charged before it runs, anything else by what it returned."""
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by Jinja2
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(owner, str) and name == "join" and args:
            items = list(args[0])
            spend(_join_size(owner, items), "join")
            return super().call(__context, __obj, items)
        if isinstance(owner, str) and name in STR_METHOD_SIZES:
            spend(STR_METHOD_SIZES[name](owner, args, kwargs), name)
            return super().call(__context, __obj, *args, **kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        spend(size_of(result), f"calling {name or 'a function'}")
        return result

    def _bounded(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` charging the budget: ahead where it can build much from little, else
        by what it returned (nothing when it hands back what it was given)."""
        passes_context = hasattr(function, "jinja_pass_arg")  # context, eval or environment
        estimate = FILTER_SIZES.get(name)

        @wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            lead, rest = (args[:1], args[1:]) if passes_context else ((), args)
            if not rest:
                return function(*args, **kwargs)
            value, others = rest[0], rest[1:]
            if name == "join":  # separator times items: count them before joining
                value = list(value)
                attribute = _arg(others, kwargs, 1, "attribute", None)
                shown = value
                if attribute is not None:
                    shown = [make_attrgetter(self, attribute)(item) for item in value]
                spend(_join_size(str(_arg(others, kwargs, 0, "d", "")), shown), "join")
                return function(*lead, value, *others, **kwargs)
            if name in SHOWING_FILTERS:
                spend(SHOWING_FILTERS[name] * shown_size(value), name)
                return function(*args, **kwargs)
            if estimate is not None:
                if name in TEXT_FILTERS and not isinstance(value, str):
                    spend(text_size(value), name)
                    value = str(value)
                spend(estimate(value, others, kwargs), name)
                return function(*lead, value, *others, **kwargs)
            result = function(*args, **kwargs)
            if result is not value:
                spend(size_of(result), name)
            return result

        return bounded
