"""The FQL subset the emulator understands: exact terms joined with ``+``, nothing else.

``field:'value'``, ``field:"value"`` and ``field:['a','b']`` (any of), joined with ``+`` (and);
strings match case-insensitively, a list field matches when any element does. Anything else
(ranges, wildcards, ``,`` for or, negation, unknown or nested fields) is refused with a
:class:`BadRequest`, answered 400: a test must never get a silently wrong answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple, NoReturn

__all__ = ["FIELD", "BadRequest", "Fql", "Term", "matches"]

_MISSING: Final = object()


class BadRequest(Exception):
    """A call the data endpoints refuse: answered 400 with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


FIELD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # a field name, in filters and sorts
_QUOTES: Final = "'\""
_SUPPORTED: Final = (
    "the emulator supports field:'value', field:\"value\" and field:['a','b'] joined with +"
)


class Term(NamedTuple):
    field: str
    values: frozenset[str]  # case-folded


class Fql:
    """A parser for the FQL subset: exact terms joined with ``+``; anything else is refused."""

    def __init__(self, text: str, fields: frozenset[str]) -> None:
        self.text = text
        self.fields = fields
        self.pos = 0

    def fail(self, reason: str) -> NoReturn:
        raise BadRequest(f'unsupported filter "{self.text}": {reason}; {_SUPPORTED}')

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def parse(self) -> tuple[Term, ...]:
        terms: list[Term] = []
        self.skip_spaces()
        if not self.peek():
            return ()
        while True:
            terms.append(self.term())
            spaced = self.peek().isspace()
            self.skip_spaces()
            following = self.peek()
            if not following:
                return tuple(terms)
            if following == "+":
                self.pos += 1
                self.skip_spaces()
                if not self.peek():
                    self.fail("a '+' must join two terms")
                continue
            if following == ",":
                self.fail("OR (',') is not emulated, only AND ('+')")
            if following in "()":
                self.fail("grouping with parentheses is not emulated")
            if spaced:
                self.fail(
                    "terms must be joined with '+' (sent as %2B: a raw '+' in a query string "
                    "reads as a space)"
                )
            self.fail(f"unexpected {following!r} at position {self.pos}")

    def term(self) -> Term:
        start = self.peek()
        if start == "!":
            self.fail("negation ('!') is not emulated")
        if start in "()":
            self.fail("grouping with parentheses is not emulated")
        match = FIELD.match(self.text, self.pos)
        if match is None:
            self.fail(f"expected a field name at position {self.pos}")
        name = match.group()
        self.pos = match.end()
        if self.peek() != ":":
            self.fail(f"expected ':' after {name!r}")
        self.pos += 1
        operator = self.peek()
        if operator == "!":
            self.fail("negation ('!') is not emulated")
        if operator in ("<", ">"):
            self.fail("ranges ('<', '<=', '>', '>=') are not emulated")
        if operator == "~":
            self.fail("text match ('~') is not emulated")
        if operator == "*":
            self.fail("wildcards ('*') are not emulated")
        if operator == "[":
            values = self.list_of_values()
        elif operator and operator in _QUOTES:
            values = [self.quoted()]
        else:
            self.fail(f"the value of {name!r} must be quoted, as in {name}:'value'")
        if name not in self.fields:
            self.fail(f"unknown field {name!r}")
        return Term(name, frozenset(value.casefold() for value in values))

    def quoted(self) -> str:
        quote = self.peek()
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            self.fail(f"unterminated quote at position {self.pos}")
        value = self.text[self.pos + 1 : end]
        if "*" in value:
            self.fail("wildcards ('*') are not emulated")
        if "\\" in value:
            self.fail("escapes ('\\') are not emulated")
        self.pos = end + 1
        return value

    def list_of_values(self) -> list[str]:
        self.pos += 1  # the '['
        values: list[str] = []
        while True:
            self.skip_spaces()
            if not self.peek() or self.peek() not in _QUOTES:
                self.fail("a list holds quoted values, as in field:['a','b']")
            values.append(self.quoted())
            self.skip_spaces()
            following = self.peek()
            self.pos += 1
            if following == "]":
                return values
            if following != ",":
                self.fail("expected ',' or ']' in a list")


def _scalar_matches(value: object, wanted: frozenset[str], name: str) -> bool:
    if isinstance(value, str):
        return value.casefold() in wanted
    if isinstance(value, (dict, list)):
        raise BadRequest(
            f"unsupported filter: {name!r} holds objects or nested lists; filtering on "
            "nested fields is not emulated"
        )
    return json.dumps(value).casefold() in wanted  # numbers, true/false, null


def matches(record: Mapping[str, object], terms: Sequence[Term]) -> bool:
    for term in terms:
        value = record.get(term.field, _MISSING)
        if value is _MISSING:
            return False
        if isinstance(value, list):  # a list field (tags) matches when any element does
            if not any(_scalar_matches(item, term.values, term.field) for item in value):
                return False
        elif not _scalar_matches(value, term.values, term.field):
            return False
    return True
