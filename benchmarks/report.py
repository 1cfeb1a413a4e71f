"""The results table: rows of cells, one column per library, footnotes numbered in order.

Rows hand over text, not numbers: each row knows how its figure reads best (a count, a
ratio with the absolute value as context). This module only lays them out, as a markdown
table that reads the same in a terminal and on GitHub.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["NOT_APPLICABLE", "Cell", "Row", "Section", "Table", "count", "ratio"]

NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class Cell:
    """A cell's text and the keys of the footnotes it refers to."""

    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """One line of the table: a cell for every library (``n/a`` ones with a footnote)."""

    number: str
    measure: Cell
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class Section:
    """What one benchmark row produced: its lines and the footnotes they refer to."""

    rows: Sequence[Row]
    notes: Mapping[str, str] = field(default_factory=dict)


def count(n: float) -> str:
    """A count with thousands separators (one decimal if it is not whole)."""
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def ratio(value: float, reference: float) -> str:
    """``value / reference`` as ``1.23x`` (three significant figures; ``inf x`` for n/0)."""
    if reference == 0:
        return "inf x" if value else "1.00x"
    quotient = value / reference
    if quotient >= 100:
        return f"{quotient:,.0f}x"
    if quotient >= 10:
        return f"{quotient:.1f}x"
    return f"{quotient:.2f}x"


class Table:
    """The whole report: columns (library key -> heading), the sections in order, and the
    footnotes the headings refer to.

    Footnotes are numbered from ``first_note``: a second table in the same document goes on
    from the first one's, so that every number in the document means one note.
    """

    def __init__(
        self,
        columns: Mapping[str, Cell],
        sections: Iterable[Section],
        notes: Mapping[str, str] | None = None,
        *,
        first_note: int = 1,
    ) -> None:
        self.columns = dict(columns)
        self.sections = list(sections)
        self.notes = dict(notes or {})
        self.first_note = first_note

    def markdown(self) -> str:
        """The table, then its numbered footnotes."""
        lines, _ = self._render()
        return "\n".join(lines) + "\n"

    def next_note(self) -> int:
        """The number a footnote after this table's would take."""
        _, numbers = self._render()
        return self.first_note + len(numbers)

    def _render(self) -> tuple[list[str], dict[str, int]]:
        numbers: dict[str, int] = {}
        texts: dict[str, str] = dict(self.notes)
        for section in self.sections:
            texts.update(section.notes)

        def render(cell: Cell) -> str:
            refs = []
            for key in cell.notes:
                if key not in texts:
                    raise KeyError(f"footnote {key!r} has no text")
                refs.append(numbers.setdefault(key, self.first_note + len(numbers)))
            marks = "".join(f" [{n}]" for n in refs)
            return (cell.text + marks).replace("|", "\\|")

        header = ["#", "measure", *(render(cell) for cell in self.columns.values())]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for section in self.sections:
            for row in section.rows:
                cells = [row.number, render(row.measure)]
                for key in self.columns:
                    if key not in row.cells:
                        # Every blank needs its reason: a row says "n/a" with a footnote.
                        raise KeyError(f"row {row.number} has no cell for {key!r}")
                    cells.append(render(row.cells[key]))
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for key, number in numbers.items():
            lines.append(f"{number}. {texts[key]}")
        return lines, numbers
