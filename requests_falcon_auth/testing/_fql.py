"""FQL, the Falcon Query Language, as Falcon's query endpoints read it: parsed once, evaluated
per record.

The grammar (whitespace may stand between any two tokens; ``+`` binds tighter than ``,``, as in
FIQL whose ``,`` FQL shares; parentheses group)::

    filter = [ or ]                    or   = and *( "," and )
    and    = unit *( "+" unit )        unit = "(" or ")" / term
    term   = property ":" [ "!" ] test
    test   = scalar                                   equal
           / "[" scalar *( "," scalar ) "]"           exactly one of
           / "*" [ quoted ]                           wildcard match; alone: has a value
           / "~" quoted                               text match
           / ( ">" / ">=" / "<" / "<=" ) scalar       comparison
    scalar = quoted / number / "true" / "false" / "null"

What the documentation says (falconpy's and PSFalcon's FQL pages, CrowdStrike's falcon-mcp
guides), and the emulator's reading of it:

- A property is letters, digits and ``_``, dotted for nested ones; names are case-insensitive
  ("uppercase submissions are accepted and converted"). A nested property reaches into objects
  and lists of objects, and a term on a list matches when any element does.
- ``field:'value'`` compares strings case-insensitively (``platform_name:'windows'`` finds
  ``Windows``), and a ``*`` in it is a wildcard (``hostname:'web*'``; ``\\*`` is a star).
  ``field:['a','b']`` is exact: case-sensitive, no wildcard. A literal is read in the type of
  the value it meets: ``'5'`` equals 5, ``'true'`` equals true; only an unquoted ``null``
  equals null (or a missing property).
- ``!`` negates the whole test. ``field:*`` is "has a value", ``field:!*`` "has none".
- ``>``, ``>=``, ``<``, ``<=`` compare numbers with numbers, timestamps with timestamps (ISO 8601,
  date or partial date; ``now``, ``now-7d``, ``now+1h`` with s, m, h, d or w) and other strings
  case-insensitively by code point.
- ``~`` matches when the literal's words (runs of letters and digits, case-folded) appear in
  that order, next to each other, among the value's words.

Anything else is a :class:`BadRequest` (answered 400) naming the position and what was expected,
so a test never gets a silently wrong answer.
"""

from __future__ import annotations

import json
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, NoReturn, Protocol

__all__ = ["FIELD", "BadRequest", "Expression", "Fql"]


class BadRequest(Exception):
    """A call the data endpoints refuse: answered 400 with ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


FIELD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # a field name, in sorts
_PROPERTY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORD: Final = re.compile(r"[A-Za-z]+")
_WORDS: Final = re.compile(r"[^\W_]+")  # text match: runs of letters and digits
_INSTANT: Final = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
    r"(?:[Tt](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?"
)
_RELATIVE: Final = re.compile(r"now(?:([+-])(\d{1,9})([smhdw]))?")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SPACES: Final = " \t\r\n"
_QUOTES: Final = "'\""
_ESCAPABLE: Final = "\\'\"*"
_MAX_DEPTH: Final = 32
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_SCALAR: Final = "a value (a quoted string, a number, true, false or null)"

Test = Callable[[object], bool]


class Expression(Protocol):
    """A parsed filter: ``evaluate`` says whether a record matches (it never raises)."""

    def evaluate(self, record: Mapping[str, object]) -> bool: ...


class _Everything:
    __slots__ = ()

    def evaluate(self, record: Mapping[str, object]) -> bool:
        return True


class _AllOf:
    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Expression]) -> None:
        self.parts = tuple(parts)

    def evaluate(self, record: Mapping[str, object]) -> bool:
        return all(part.evaluate(record) for part in self.parts)


class _AnyOf:
    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Expression]) -> None:
        self.parts = tuple(parts)

    def evaluate(self, record: Mapping[str, object]) -> bool:
        return any(part.evaluate(record) for part in self.parts)


class _Term:
    __slots__ = ("negated", "path", "test")

    def __init__(self, path: tuple[str, ...], test: Test, negated: bool) -> None:
        self.path = path
        self.test = test
        self.negated = negated

    def evaluate(self, record: Mapping[str, object]) -> bool:
        if len(self.path) == 1:  # the common case, without building a list
            value = record.get(self.path[0])
            if isinstance(value, list) and value:
                hit = any(self.test(item) for item in value)
            else:
                hit = self.test(None if isinstance(value, list) else value)
        else:
            hit = any(self.test(value) for value in _values(record, self.path))
        return hit is not self.negated


def _values(record: Mapping[str, object], path: tuple[str, ...]) -> list[object]:
    """The values a (nested) property holds: list elements one by one; [None] for none."""
    found: list[object] = [record]
    for name in path:
        reached: list[object] = []
        for holder in found:
            if isinstance(holder, Mapping) and name in holder:
                value = holder[name]
                if isinstance(value, list):
                    reached.extend(value)
                else:
                    reached.append(value)
        found = reached
    return found or [None]


# -- literals and what they match -----------------------------------------------------------------


class _Literal:
    """A scalar as written: its text (unescaped), wildcard pieces, and whether it was quoted."""

    __slots__ = ("pieces", "quoted", "text")

    def __init__(self, pieces: tuple[str, ...], quoted: bool) -> None:
        self.pieces = pieces  # the text split at its wildcards (one piece: none)
        self.quoted = quoted
        self.text = "*".join(pieces)

    @property
    def is_null(self) -> bool:
        return not self.quoted and self.text == "null"

    def number(self) -> float | None:
        return float(self.text) if _NUMBER.fullmatch(self.text) else None

    def boolean(self) -> bool | None:
        folded = self.text.casefold()
        return folded == "true" if folded in ("true", "false") else None


def _number_text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return json.dumps(value)


def _equal_test(literal: _Literal) -> Test:
    if literal.is_null:
        return _is_null
    if len(literal.pieces) > 1:
        return _wildcard_test(literal.pieces)
    folded = literal.text.casefold()
    number = literal.number()
    boolean = literal.boolean()

    def test(value: object) -> bool:
        if isinstance(value, str):
            return value.casefold() == folded
        if isinstance(value, bool):
            return value is boolean
        if isinstance(value, (int, float)):
            return value == number
        return False

    return test


def _is_null(value: object) -> bool:
    return value is None


def _has_value(value: object) -> bool:
    return value is not None


def _wildcard_test(pieces: tuple[str, ...]) -> Test:
    pattern = re.compile(".*".join(re.escape(piece.casefold()) for piece in pieces), re.DOTALL)

    def test(value: object) -> bool:
        text = value if isinstance(value, str) else _number_text(value)
        return text is not None and pattern.fullmatch(text.casefold()) is not None

    return test


def _exact_test(literals: Sequence[_Literal]) -> Test:
    texts = frozenset(lit.text for lit in literals if not lit.is_null)
    numbers = frozenset(n for n in (lit.number() for lit in literals) if n is not None)
    booleans = frozenset(lit.text == "true" for lit in literals if lit.text in ("true", "false"))
    with_null = any(lit.is_null for lit in literals)

    def test(value: object) -> bool:
        if value is None:
            return with_null
        if isinstance(value, str):
            return value in texts
        if isinstance(value, bool):
            return value in booleans
        if isinstance(value, (int, float)):
            return value in numbers
        return False

    return test


def _compare_test(symbol: str, literal: _Literal, now: float) -> Test:
    compare = _COMPARISONS[symbol]
    number = literal.number()
    instant = _instant(literal.text, now) if literal.quoted else None
    folded = literal.text.casefold()
    instants: dict[str, float | None] = {}

    def test(value: object) -> bool:
        if isinstance(value, bool) or value is None:
            return False
        if isinstance(value, (int, float)):
            return number is not None and compare(value, number)
        if not isinstance(value, str):
            return False
        if instant is not None:
            if value in instants:  # timestamps repeat across records: parse each once a query
                seen = instants[value]
            else:
                seen = instants[value] = _instant(value, None)
            return seen is not None and compare(seen, instant)
        return compare(value.casefold(), folded)

    return test


def _text_test(literal: _Literal) -> Test:
    wanted: list[str] = _WORDS.findall(literal.text.casefold())
    size = len(wanted)

    def test(value: object) -> bool:
        if not isinstance(value, str):
            return False
        words: list[str] = _WORDS.findall(value.casefold())
        return any(words[i : i + size] == wanted for i in range(len(words) - size + 1))

    return test


def _instant(text: str, now: float | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 (partial) timestamp, or ``now[+-]N<unit>`` when
    ``now`` is given; None for anything else."""
    if now is not None:
        relative = _RELATIVE.fullmatch(text)
        if relative is not None:
            sign, count, unit = relative.groups()
            offset = int(count) * _UNIT_SECONDS[unit] if count else 0
            return now - offset if sign == "-" else now + offset
    match = _INSTANT.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    shift = timedelta()
    if zone and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        shift = -shift if zone[0] == "-" else shift
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
            tzinfo=timezone(shift),
        )
    except ValueError:  # a month 13, a day 32, an offset of a day or more
        return None
    return (moment - _EPOCH).total_seconds()


# -- the parser -----------------------------------------------------------------------------------


class Fql:
    """A parser for FQL filters over records with the properties ``fields``.

    Args:
        text: the filter as sent.
        fields: the collection's known top-level properties (an unknown one is a 400).
        now: the wall clock reading (epoch seconds) that ``now-7d`` counts from; the current
            time when None.
    """

    def __init__(self, text: str, fields: frozenset[str], now: float | None = None) -> None:
        self.text = text
        self.fields = fields
        self.folded = {name.casefold(): name for name in sorted(fields, reverse=True)}
        self.now = time.time() if now is None else now
        self.pos = 0
        self.depth = 0

    def parse(self) -> Expression:
        """The filter as an :class:`Expression`; an empty filter matches everything.

        Raises:
            BadRequest: the text is not FQL, or names an unknown property.
        """
        self.skip_spaces()
        if self.pos == len(self.text):
            return _Everything()
        expression = self.any_of()
        if self.pos < len(self.text):
            self.unexpected_after_term()
        return expression

    # -- reading --------------------------------------------------------------------------------

    def fail(self, expected: str, position: int | None = None) -> NoReturn:
        at = self.pos if position is None else position
        found = repr(self.text[at]) if at < len(self.text) else "the end"
        raise BadRequest(
            f'invalid filter "{self.text}": expected {expected} at position {at}, found {found}'
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACES:
            self.pos += 1

    def take(self, token: str) -> bool:
        """Skips spaces; consumes ``token`` when it comes next."""
        self.skip_spaces()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def unexpected_after_term(self) -> NoReturn:
        if self.pos > 0 and self.text[self.pos - 1] in _SPACES and _PROPERTY.match(self.peek()):
            self.fail(
                "'+' or ',' between terms (a raw '+' in a query string reads as a space: "
                "send it as %2B)"
            )
        self.fail("'+', ',' or the end of the filter")

    # -- structure ------------------------------------------------------------------------------

    def any_of(self) -> Expression:
        parts = [self.all_of()]
        while self.take(","):
            parts.append(self.all_of())
        return parts[0] if len(parts) == 1 else _AnyOf(parts)

    def all_of(self) -> Expression:
        parts = [self.unit()]
        while self.take("+"):
            parts.append(self.unit())
        return parts[0] if len(parts) == 1 else _AllOf(parts)

    def unit(self) -> Expression:
        self.skip_spaces()
        if not self.take("("):
            return self.term()
        if self.depth >= _MAX_DEPTH:
            self.fail(f"at most {_MAX_DEPTH} nested parentheses", self.pos - 1)
        self.depth += 1
        inner = self.any_of()
        self.depth -= 1
        if not self.take(")"):
            self.fail("')' or an operator ('+', ',')")
        return inner

    def term(self) -> Expression:
        start = self.pos
        match = _PROPERTY.match(self.text, start)
        if match is None:
            self.fail("a property name or '('")
        self.pos = match.end()
        path = self.resolve(match.group(), start)
        if not self.take(":"):
            self.fail(f"':' after the property {match.group()!r}")
        negated = self.take("!")
        return _Term(path, self.test(), negated)

    def resolve(self, name: str, start: int) -> tuple[str, ...]:
        head, *rest = name.split(".")
        known = head if head in self.fields else self.folded.get(head.casefold())
        if known is None:
            raise BadRequest(
                f'invalid filter "{self.text}": unknown property {head!r} at position {start}'
            )
        return (known, *rest)

    def test(self) -> Test:
        self.skip_spaces()
        for symbol in _COMPARISONS:  # longest first: '>=' before '>'
            if self.take(symbol):
                at = self.pos
                literal = self.scalar()
                if literal.is_null or (literal.boolean() is not None and not literal.quoted):
                    self.fail("a quoted string or a number to compare with", at)
                return _compare_test(symbol, literal, self.now)
        if self.take("~"):
            return _text_test(self.quoted())
        if self.take("*"):
            self.skip_spaces()
            if self.peek() and self.peek() in _QUOTES:
                return _equal_test(self.quoted())
            return _has_value
        if self.take("["):
            literals = [self.scalar()]
            while self.take(","):
                literals.append(self.scalar())
            if not self.take("]"):
                self.fail("',' or ']' in a list")
            return _exact_test(literals)
        return _equal_test(self.scalar())

    def scalar(self) -> _Literal:
        self.skip_spaces()
        if self.peek() and self.peek() in _QUOTES:
            return self.quoted()
        number = _NUMBER.match(self.text, self.pos)
        word = _WORD.match(self.text, self.pos)
        token = number or word
        if token is None or (word is not None and word.group() not in ("true", "false", "null")):
            self.fail(_SCALAR)
        self.pos = token.end()
        following = self.peek()
        if following and (following.isalnum() or following in "._"):
            self.fail(f"the end of {token.group()!r} (quote strings: 'value')")
        return _Literal((token.group(),), quoted=False)

    def quoted(self) -> _Literal:
        self.skip_spaces()
        quote = self.peek()
        if not quote or quote not in _QUOTES:
            self.fail("a quoted string")
        start = self.pos
        self.pos += 1
        pieces: list[str] = []
        current: list[str] = []
        while True:
            if self.pos >= len(self.text):
                self.fail(f"{quote} to close the string opened at position {start}")
            char = self.text[self.pos]
            self.pos += 1
            if char == quote:
                pieces.append("".join(current))
                return _Literal(tuple(pieces), quoted=True)
            if char == "*":
                pieces.append("".join(current))
                current = []
            elif char == "\\" and self.peek() and self.peek() in _ESCAPABLE:
                current.append(self.peek())
                self.pos += 1
            else:
                current.append(char)
