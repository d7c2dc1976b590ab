"""Where a grammar-constrained JSON answer is, as it is written, and when to end a value.

A grammar makes every answer valid JSON of the schema's shape, but it cannot make a small
model stop: inside a string it may write anything, and a list may grow without end. A model
that has lost its way does one of three things there: it writes on as if the string were
closed (``"Madrid }. She lives in Madrid...``), it repeats itself (``"She is 34. She is
34..."``, ``["text", "text", ...]``), or it never stops. ``JsonGuard`` follows the answer
token by token, knows which value of the schema each string and list is, and says when the
next token should end it: at the bounds (``tether.types.Bounds``) the schema leaves to it,
where the model writes a closing brace inside a string, where a string starts repeating
itself, and where a list repeats an item. The sampler (tether.models.local_sampling) then
keeps only tokens that end the value, if the grammar allows one there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tether.models.repetition import periodic_tail
from tether.types import Bounds

WHITESPACE = b" \t\n\r"
END_STRING = b'"'
# Formats whose strings llama.cpp's grammar already bounds.
BOUNDED_FORMATS = frozenset({"date", "date-time", "time", "uuid"})
MAX_PERIOD = 256  # the longest unit a string may repeat and still be caught
MAX_ITEM_PERIOD = 8  # the most text items a list may repeat as one run and still be caught
# What reading a token changes besides the text and the containers (put back by overruns).
_SCALARS = ("state", "in_key", "escape", "string_start", "string_bound", "string_free", "overran")


@dataclass
class _Container:
    kind: str  # "object" or "array"
    schemas: list[dict[str, Any]]  # what the schema says this container may be
    key: str | None = None  # object: the key whose value comes next
    bound: int | None = None  # array: items allowed where the schema sets no maxItems
    items: list[bytes] = field(default_factory=list)  # array: the items written, as text
    item_start: int = 0  # array: where the item being written starts


class JsonGuard:
    """Follows one answer; ``accept`` each token's text, ask ``closing`` before each token."""

    def __init__(self, schema: dict[str, Any], bounds: Bounds) -> None:
        self.root = schema
        self.bounds = bounds
        self.reset()

    def reset(self) -> None:
        self.text = bytearray()
        self.stack: list[_Container] = []
        self.state = "value"  # value | key | colon | string | scalar | after | done
        self.in_key = False
        self.escape = False
        self.string_start = 0
        self.string_bound: int | None = None
        self.string_free = False  # a string of free text (not an enum, const or format)
        self.overran = False  # a comma went on with a list that should have ended

    # -- reading the answer --------------------------------------------------------------

    def accept(self, piece: bytes) -> None:
        """The text of the token just chosen."""
        for byte in piece:
            self.text.append(byte)
            self._feed(byte)

    def _feed(self, byte: int) -> None:
        char = bytes((byte,))
        state = self.state
        if state == "string":
            if self.escape:
                self.escape = False
            elif char == b"\\":
                self.escape = True
            elif char == b'"':
                self._end_string()
            return
        if state == "scalar":
            if char in b",}]" or char in WHITESPACE:
                self._end_value(last=len(self.text) - 1)  # the scalar ended before this byte
                self._feed(byte)
            return
        if char in WHITESPACE:
            return
        if state == "key":
            if char == b'"':
                self.state, self.in_key, self.string_start = "string", True, len(self.text)
            elif char == b"}":
                self._close()
        elif state == "colon":
            if char == b":":
                self.state = "value"
        elif state == "value":
            self._start_value(char)
        elif state == "after":
            if char == b",":
                top = self.stack[-1]
                if top.kind == "array" and self._list_over(top):
                    self.overran = True
                self.state = "key" if top.kind == "object" else "value"
            elif char in b"}]":
                self._close()

    def _start_value(self, char: bytes) -> None:
        if char == b"]" and self.stack and self.stack[-1].kind == "array":
            self._close()  # an empty list
            return
        schemas = self._value_schemas()
        if self.stack and self.stack[-1].kind == "array":
            self.stack[-1].item_start = len(self.text) - 1  # this byte starts the item
        if char == b"{":
            objects = [s for s in schemas if _allows(s, "object")] or [{}]
            self.stack.append(_Container("object", objects))
            self.state = "key"
        elif char == b"[":
            arrays = [s for s in schemas if _allows(s, "array")] or [{}]
            unbounded = any("maxItems" not in s for s in arrays)
            self.stack.append(
                _Container("array", arrays, bound=self.bounds.items if unbounded else None)
            )
            self.state = "value"
        elif char == b'"':
            strings = [s for s in schemas if _allows(s, "string")] or [{}]
            self.string_free = any(_free_text(s) for s in strings)
            unbounded = any(_free_text(s) and "maxLength" not in s for s in strings)
            self.string_bound = self.bounds.string if unbounded else None
            self.state, self.in_key, self.string_start = "string", False, len(self.text)
        else:
            self.state = "scalar"

    def _end_string(self) -> None:
        if self.in_key:
            key = bytes(self.text[self.string_start : -1]).decode("utf-8", errors="replace")
            self.stack[-1].key = key
            self.state = "colon"
        else:
            self._end_value()

    def _end_value(self, last: int | None = None) -> None:
        """A value ended (at ``last``, by default the byte just read)."""
        if not self.stack:
            self.state = "done"
            return
        top = self.stack[-1]
        if top.kind == "array":
            end = len(self.text) if last is None else last
            top.items.append(bytes(self.text[top.item_start : end]).strip(WHITESPACE))
        self.state = "after"

    def _close(self) -> None:
        self.stack.pop()
        self._end_value()

    # -- what the schema says ------------------------------------------------------------

    def _value_schemas(self) -> list[dict[str, Any]]:
        if not self.stack:
            return self._expand(self.root)
        top = self.stack[-1]
        found: list[dict[str, Any]] = []
        for schema in top.schemas:
            if top.kind == "object":
                properties = schema.get("properties") or {}
                extra = schema.get("additionalProperties")
                if top.key in properties:
                    found += self._expand(properties[top.key])
                elif isinstance(extra, dict):
                    found += self._expand(extra)
            else:
                index = len(top.items)
                prefix = schema.get("prefixItems") or []
                item = prefix[index] if index < len(prefix) else schema.get("items")
                if isinstance(item, dict):
                    found += self._expand(item)
        return found or [{}]

    def _expand(self, schema: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
        """The schemas a value may match: references followed, unions spread out."""
        if depth > 32:
            return [{}]
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self._expand(merged, depth + 1)
        for union in ("anyOf", "oneOf", "allOf"):
            if isinstance(schema.get(union), list):
                rest = {k: v for k, v in schema.items() if k != union}
                return [
                    expanded
                    for branch in schema[union]
                    for expanded in self._expand({**rest, **branch}, depth + 1)
                ]
        return [schema]

    # -- when to end -----------------------------------------------------------------------

    def constraint(self) -> Constraint | None:
        """Which tokens may come next so that the value being written ends (None: any the
        grammar allows)."""
        ending = (
            self.state == "string"
            and self.string_free
            and not self.in_key
            and not self.escape
            and self._string_should_end(bytes(self.text[self.string_start :]))
        )
        in_list = any(c.kind == "array" for c in self.stack)
        if not (ending or in_list):
            return None
        return Constraint(require=QUOTE if ending else None, check_lists=in_list)

    def overruns(self, piece: bytes) -> bool:
        """Whether this token would go on with a list that should end: put a comma after its
        last allowed item, or after an item that repeats an earlier one. One token often
        ends a value and goes on (``",`` or ``},``), so it is read through to find out, and
        everything it changed is put back."""
        scalars = {name: getattr(self, name) for name in _SCALARS}
        stack = list(self.stack)
        kept = [(c.key, c.item_start, len(c.items)) for c in stack]
        length = len(self.text)
        self.overran = False
        try:
            self.accept(piece)
            return self.overran
        finally:
            del self.text[length:]
            self.stack = stack
            for container, (key, start, count) in zip(stack, kept, strict=True):
                container.key, container.item_start = key, start
                del container.items[count:]
            for name, value in scalars.items():
                setattr(self, name, value)

    def _list_over(self, container: _Container) -> bool:
        """A list whose items so far fill its bound, or that has started repeating itself:
        an object (or list) item the same as an earlier one, or a run of text items said
        three times over (``"text", "text", "text"``). Numbers and other plain values may
        repeat (two items at one price): only the bound ends such a list."""
        items = container.items
        if container.bound is not None and len(items) >= container.bound:
            return True
        if not self.bounds.runaway or len(items) < 2:
            return False
        last = items[-1][:1]
        if last in (b"{", b"["):
            return items[-1] in items[:-1]
        if last == b'"':
            period, length = periodic_tail(items, MAX_ITEM_PERIOD)
            return period > 0 and length >= 3 * period
        return False

    def folds(self) -> tuple[str, ...]:
        """The kinds of token that now mean the end of the string being written: inside free
        text, a closing brace (a small model that writes one has moved on without the
        quote), and in a list item a closing bracket too (elsewhere ``[3]`` is text)."""
        if not (
            self.state == "string"
            and not self.in_key
            and not self.escape
            and self.string_free
            and self.bounds.runaway
        ):
            return ()
        in_list = bool(self.stack) and self.stack[-1].kind == "array"
        return (BRACE_CLOSER, LIST_CLOSER) if in_list else (BRACE_CLOSER,)

    def _string_should_end(self, content: bytes) -> bool:
        bound = self.string_bound
        if bound is not None and len(content.decode("utf-8", errors="ignore")) >= bound:
            return True
        if not self.bounds.runaway:
            return False
        return _loops(*periodic_tail(content, MAX_PERIOD))


def _loops(period: int, length: int) -> bool:
    """Whether a string ending in ``length`` characters of a repeated ``period``-character
    unit has lost its way: a phrase said twice over (``She is 34. She is 34.``), a short
    unit four times (``text, text, text, text, ``); a run of one or two characters only
    when long (a row of dashes or masked digits is a value)."""
    if period == 0:
        return False
    if period < 4:
        return length >= 48
    if period < 8:
        return length >= max(24, 4 * period)
    return length >= 2 * period


@dataclass(frozen=True)
class Constraint:
    """What the next token must be: of the kind ``require`` names (see TOKEN_KINDS), and,
    with ``check_lists``, not one that ``JsonGuard.overruns`` (only tokens of kind COMMA
    can)."""

    require: str | None = None
    check_lists: bool = False


QUOTE, COMMA, BRACE_CLOSER, LIST_CLOSER = "quote", "comma", "brace-closer", "list-closer"
# What each kind of token looks like, from the start of its text.
TOKEN_KINDS: dict[str, re.Pattern[bytes]] = {
    QUOTE: re.compile(rb'"'),  # ends a string
    COMMA: re.compile(rb"[^,]*,", re.DOTALL),  # holds a comma: may go on with a list
    BRACE_CLOSER: re.compile(rb"[ \t\n\r]*}"),  # would close an object
    LIST_CLOSER: re.compile(rb"[ \t\n\r]*]"),  # would close a list
}


def _allows(schema: dict[str, Any], kind: str) -> bool:
    """Whether a value of JSON type ``kind`` may match ``schema``."""
    declared = schema.get("type")
    if declared is None:
        if "enum" in schema:
            return any(_json_type(v) == kind for v in schema["enum"])
        if "const" in schema:
            return _json_type(schema["const"]) == kind
        return True
    return kind in declared if isinstance(declared, list) else declared == kind


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "other"


def _free_text(schema: dict[str, Any]) -> bool:
    """A string the model writes freely: not one of a set, a constant or a fixed format."""
    return not ("enum" in schema or "const" in schema or schema.get("format") in BOUNDED_FORMATS)


__all__ = [
    "BRACE_CLOSER",
    "COMMA",
    "LIST_CLOSER",
    "QUOTE",
    "TOKEN_KINDS",
    "Constraint",
    "JsonGuard",
]
