"""FQL against a reference: random filter trees and records, rendered with random legal spacing
and quoting, must match exactly the records a direct evaluation of the tree says they match.

The reference below reads the tree, not the text, and shares no code with the emulator's parser.
"""

from __future__ import annotations

import fnmatch
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requests_falcon_auth.testing._fql import BadRequest, Expression, Fql

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
FIELDS = frozenset({"name", "n", "ts", "flag", "tags", "obj"})
STRING_PATHS = ("name", "tags", "obj.id")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
TIMESTAMPS = [f"2024-0{m}-0{d}T0{h}:00:00Z" for m in (2, 3) for d in (1, 2) for h in (0, 9)]


@dataclass(frozen=True)
class Literal:
    text: str
    quoted: bool
    wildcard: bool = False  # its stars are wildcards (else escaped when rendered)


@dataclass(frozen=True)
class Cond:
    path: str
    kind: str  # equal, exact, present, compare, text
    negated: bool
    literals: tuple[Literal, ...] = ()
    symbol: str = ""


@dataclass(frozen=True)
class Group:
    all_of: bool  # '+' when true, ',' when false
    parts: tuple[Node, ...]


Node = Union[Cond, Group]

# -- the reference ----------------------------------------------------------------------------------


def values(record: dict[str, Any], path: str) -> list[Any]:
    found: list[Any] = [record]
    for name in path.split("."):
        step: list[Any] = []
        for holder in found:
            if isinstance(holder, dict) and name in holder:
                value = holder[name]
                step.extend(value if isinstance(value, list) else [value])
        found = step
    return found or [None]


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return None


def as_float(text: str) -> float | None:
    return float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else None


def as_time(text: str, relative: bool) -> float | None:
    if relative and text.startswith("now-") and text.endswith("d"):
        return NOW - int(text[4:-1]) * 86_400
    for form in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    return None


def equal(value: Any, lit: Literal) -> bool:
    if not lit.quoted and lit.text == "null":
        return value is None
    if lit.wildcard:
        text = as_text(value)
        return text is not None and fnmatch.fnmatchcase(text.casefold(), lit.text.casefold())
    if isinstance(value, str):
        return value.casefold() == lit.text.casefold()
    if isinstance(value, bool):
        return lit.text.casefold() == str(value).casefold()
    if isinstance(value, (int, float)):
        return as_float(lit.text) == value
    return False


def exact(value: Any, lit: Literal) -> bool:
    if value is None:
        return not lit.quoted and lit.text == "null"
    if isinstance(value, (dict, list)):
        return False
    if isinstance(value, str):
        return value == lit.text and not (not lit.quoted and lit.text == "null")
    if isinstance(value, bool):
        return lit.text == str(value).lower()
    return as_float(lit.text) == value


def compare(value: Any, symbol: str, lit: Literal) -> bool:
    check = OPERATORS[symbol]
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        number = as_float(lit.text)
        return number is not None and check(value, number)
    if not isinstance(value, str):
        return False
    wanted = as_time(lit.text, relative=True) if lit.quoted else None
    if wanted is not None:
        seen = as_time(value, relative=False)
        return seen is not None and check(seen, wanted)
    return check(value.casefold(), lit.text.casefold())


def text_match(value: Any, lit: Literal) -> bool:
    if not isinstance(value, str):
        return False
    wanted = re.findall(r"[a-z0-9]+", lit.text.casefold())
    words = re.findall(r"[a-z0-9]+", value.casefold())
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def reference(node: Node, record: dict[str, Any]) -> bool:
    if isinstance(node, Group):
        results = (reference(part, record) for part in node.parts)
        return all(results) if node.all_of else any(results)
    tests: dict[str, Callable[[Any], bool]] = {
        "equal": lambda v: equal(v, node.literals[0]),
        "exact": lambda v: any(exact(v, lit) for lit in node.literals),
        "present": lambda v: v is not None,
        "compare": lambda v: compare(v, node.symbol, node.literals[0]),
        "text": lambda v: text_match(v, node.literals[0]),
    }
    hit = any(tests[node.kind](v) for v in values(record, node.path))
    return hit != node.negated


# -- rendering ---------------------------------------------------------------------------------------

spaces = st.sampled_from(["", "", " ", "  ", "\t", "\n "])


@st.composite
def render_literal(draw: st.DrawFn, lit: Literal) -> str:
    if not lit.quoted:
        return lit.text
    quote = draw(st.sampled_from("'\""))
    body = lit.text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    if not lit.wildcard:
        body = body.replace("*", "\\*")
    return quote + body + quote


@st.composite
def render(draw: st.DrawFn, node: Node, inside: bool | None = None) -> str:
    gap = lambda: draw(spaces)  # noqa: E731
    if isinstance(node, Cond):
        head, dot, rest = node.path.partition(".")  # top-level names are case-insensitive
        name = draw(st.sampled_from([head, head.upper(), head.capitalize()])) + dot + rest
        text = name + gap() + ":" + gap() + ("!" + gap() if node.negated else "")
        if node.kind == "exact":
            items = [gap() + draw(render_literal(lit)) + gap() for lit in node.literals]
            return text + "[" + ",".join(items) + "]"
        if node.kind == "present":
            return text + "*"
        prefix = {"compare": node.symbol, "text": "~", "equal": ""}[node.kind]
        if node.kind == "equal" and node.literals[0].wildcard and draw(st.booleans()):
            prefix = "*"
        return text + prefix + gap() + draw(render_literal(node.literals[0]))
    joiner = "+" if node.all_of else ","
    body = (gap() + joiner + gap()).join(draw(render(part, node.all_of)) for part in node.parts)
    # An OR inside an AND needs parentheses; elsewhere they are optional.
    if (inside is True and not node.all_of) or draw(st.integers(0, 4)) == 0:
        return "(" + gap() + body + gap() + ")"
    return body


# -- random trees and records -------------------------------------------------------------------------

# Few strings, with case and punctuation variants of each other, so that terms often meet them.
words = st.sampled_from(["", "a", "A", "ab", "aB", "a b", "A-b"])
patterns = st.text(alphabet="aAb-*", min_size=1, max_size=4).filter(lambda t: "*" in t)


def quoted(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Literal]:
    return strategy.map(lambda text: Literal(text, quoted=True))


numbers = st.integers(-3, 3).map(str) | st.sampled_from(["0.5", "-1.5"])
null = st.just(Literal("null", quoted=False))
string_literal = quoted(words) | null
number_literal = numbers.map(lambda t: Literal(t, quoted=False)) | quoted(numbers) | null
flag_literal = st.sampled_from(["true", "false"]).flatmap(
    lambda t: st.sampled_from([Literal(t, quoted=False), Literal(t, quoted=True)])
)
time_literal = quoted(
    st.sampled_from([*TIMESTAMPS, "2024-02-02", "2024-03-01", "now-1d", "now-30d"])
)


@st.composite
def conds(draw: st.DrawFn) -> Cond:
    negated = draw(st.booleans())
    path = draw(st.sampled_from([*STRING_PATHS, "n", "ts", "flag"]))
    if path in STRING_PATHS:
        literal, compared = string_literal, quoted(words)
    elif path == "n":
        literal, compared = number_literal, numbers.map(lambda t: Literal(t, quoted=False))
    elif path == "ts":
        literal, compared = quoted(st.sampled_from(TIMESTAMPS)) | null, time_literal
    else:
        literal, compared = flag_literal | null, flag_literal
    kind = draw(st.sampled_from(["equal", "exact", "present", "compare", "text", "wildcard"]))
    if kind == "exact":
        return Cond(path, kind, negated, tuple(draw(st.lists(literal, min_size=1, max_size=3))))
    if kind == "present":
        return Cond(path, kind, negated)
    if kind == "compare" and path != "flag":
        symbol = draw(st.sampled_from(sorted(OPERATORS)))
        return Cond(path, kind, negated, (draw(compared),), symbol)
    if kind == "text" and path in STRING_PATHS:
        return Cond(path, kind, negated, (draw(quoted(words)),))
    if kind == "wildcard" and path in STRING_PATHS:
        pattern = Literal(draw(patterns), quoted=True, wildcard=True)
        return Cond(path, "equal", negated, (pattern,))
    return Cond(path, "equal", negated, (draw(literal),))


def groups(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    parts = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.builds(Group, st.booleans(), parts)


trees: st.SearchStrategy[Node] = st.recursive(conds(), groups, max_leaves=8)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just("absent"), st.none(), strategy)


def drop_absent(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_absent(v) for k, v in value.items() if v != "absent"}
    if isinstance(value, list):
        return [drop_absent(v) for v in value]
    return value


records = st.fixed_dictionaries(
    {
        "name": maybe(words | st.integers(-2, 2)),
        "n": maybe(st.integers(-3, 3) | st.sampled_from([0.5, -1.5]) | numbers),
        "ts": maybe(st.sampled_from(TIMESTAMPS) | words),
        "flag": maybe(st.booleans()),
        "tags": maybe(st.lists(words, max_size=3)),
        "obj": maybe(st.lists(st.fixed_dictionaries({"id": maybe(words)}), max_size=2)),
    }
).map(drop_absent)


@settings(max_examples=500, deadline=None)
@given(st.data(), trees, st.lists(records, min_size=6, max_size=12))
def test_the_parser_agrees_with_the_reference(
    data: st.DataObject, tree: Node, sample: list[dict[str, Any]]
) -> None:
    text = data.draw(render(tree))
    expression = Fql(text, FIELDS, now=NOW).parse()
    for record in sample:
        assert expression.evaluate(record) == reference(tree, record), (text, record)


FQL_ALPHABET = "nametsflagobj.id:!*~[]()+,'\"\\ <>=-0123456789truefalsenull"


def parse(text: str) -> Expression | str:
    """The expression, or the message of the 400 refusing the text."""
    try:
        return Fql(text, FIELDS, now=NOW).parse()
    except BadRequest as refused:
        return refused.message


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=FQL_ALPHABET, max_size=40) | st.text(max_size=30), records)
def test_any_text_is_an_expression_or_a_400(text: str, record: dict[str, Any]) -> None:
    parsed = parse(text)
    if isinstance(parsed, str):
        assert parsed.startswith(f'invalid filter "{text}": ')
        assert "at position " in parsed
    else:
        assert parsed.evaluate(record) in (True, False)


def test_deep_nesting_is_a_400_not_a_crash() -> None:
    text = "(" * 5000 + "name:'a'" + ")" * 5000
    with pytest.raises(BadRequest, match="nested parentheses at position 32"):
        Fql(text, FIELDS).parse()
