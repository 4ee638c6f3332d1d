"""iCalendar text as a tree of content lines that serialises back to the same bytes.

:func:`parse` splits a calendar object into :class:`Block` components holding
:class:`Line` properties and nested blocks. A line keeps the text it was read from
(``raw``, folding included); :func:`render` writes unchanged lines back exactly as they
were and folds only lines that were added or rewritten. Nothing here interprets values:
that is icalendar's job (:mod:`.ical`), and :mod:`.icalpatch` decides what to rewrite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from icalendar import Component, Parameters
from icalendar.parser import Contentline

from syncd.errors import BrokenCalendarData

_PHYSICAL = re.compile(r"\r\n|\n|\r")


@dataclass
class Line:
    """One content line: its unfolded ``text`` and, when read, the ``raw`` folded form."""

    text: str
    raw: str | None = None

    @property
    def name(self) -> str:
        """The property name, upper-cased (``X-FOO`` in ``X-Foo;A=1:v``)."""
        return re.split(r"[;:]", self.text, maxsplit=1)[0].upper()

    def parts(self) -> tuple[str, Parameters, str]:
        """Name, parameters and the value verbatim (escapes kept)."""
        name, params, value = Contentline(self.text).raw_parts()  # type: ignore[no-untyped-call]
        return name.upper(), params, value

    def tzids(self) -> set[str]:
        """The TZID parameter value this line refers to (empty set when none)."""
        if "TZID=" not in self.text.upper():
            return set()
        tzid = self.parts()[1].get("TZID")
        return {str(tzid)} if tzid else set()


@dataclass
class Block:
    """One component: ``BEGIN``/``END`` lines and its items (lines and sub-blocks) in order."""

    name: str
    begin: Line
    end: Line
    items: list[Line | Block] = field(default_factory=list)

    def lines(self, name: str | None = None) -> list[Line]:
        """This block's own property lines (all, or those called ``name``)."""
        return [i for i in self.items if isinstance(i, Line) and (name is None or i.name == name)]

    def blocks(self, name: str | None = None) -> list[Block]:
        """This block's direct sub-components (all, or those called ``name``)."""
        return [i for i in self.items if isinstance(i, Block) and (name is None or i.name == name)]

    def walk(self) -> Iterator[Block]:
        """This block and every block inside it, depth first."""
        yield self
        for sub in self.blocks():
            yield from sub.walk()

    def remove(self, item: Line | Block) -> None:
        """Drop ``item`` (compared by identity)."""
        self.items = [i for i in self.items if i is not item]

    def insert_after_props(self, new: list[Line]) -> None:
        """Add property lines after the last property line (before sub-components)."""
        at = max((n + 1 for n, i in enumerate(self.items) if isinstance(i, Line)), default=0)
        self.items[at:at] = new


def parse(text: str) -> Block:
    """The VCALENDAR of ``text`` as a block tree; BrokenCalendarData if it does not nest."""
    stack: list[Block] = []
    top: Block | None = None
    for line in _content_lines(text):
        name = line.name
        if name == "BEGIN":
            block = Block(line.text.split(":", 1)[-1].strip().upper(), line, line)
            if stack:
                stack[-1].items.append(block)
            elif top is None:
                top = block
            else:
                raise BrokenCalendarData("text after the end of the VCALENDAR")
            stack.append(block)
        elif name == "END":
            if not stack or line.text.split(":", 1)[-1].strip().upper() != stack[-1].name:
                raise BrokenCalendarData(f"unbalanced {line.text!r}")
            stack.pop().end = line
        elif stack:
            stack[-1].items.append(line)
        elif line.text.strip():
            raise BrokenCalendarData("a property outside any component")
    if top is None or stack or top.name != "VCALENDAR":
        raise BrokenCalendarData("not one complete VCALENDAR")
    return top


def _content_lines(text: str) -> Iterator[Line]:
    physical = _PHYSICAL.split(text)
    current: list[str] = []
    for row in physical:
        if row[:1] in (" ", "\t") and current:
            current.append(row)
            continue
        if current:
            yield _line(current)
        current = [row] if row else []
    if current:
        yield _line(current)


def _line(rows: list[str]) -> Line:
    return Line("".join([rows[0], *(r[1:] for r in rows[1:])]), "\r\n".join(rows))


def render(block: Block) -> str:
    """The block tree as iCalendar text (CRLF line ends)."""
    return "".join(_render(block))


def _render(block: Block) -> Iterator[str]:
    yield _text_of(block.begin)
    for item in block.items:
        if isinstance(item, Block):
            yield from _render(item)
        else:
            yield _text_of(item)
    yield _text_of(block.end)


def _text_of(line: Line) -> str:
    if line.raw is not None:
        return line.raw + "\r\n"
    folded: bytes = Contentline(line.text).to_ical()  # type: ignore[no-untyped-call]
    return folded.decode() + "\r\n"


def lines_of(component: Component) -> list[Line]:
    """New lines for the properties of an icalendar component (no BEGIN/END)."""
    out = []
    for content in component.content_lines(sorted=False):
        text = str(content)
        if text and not text.upper().startswith(("BEGIN:", "END:")):
            out.append(Line(text))
    return out


def block_of(component: Component) -> Block:
    """A new block (and sub-blocks) for an icalendar component."""
    return parse_component(component.to_ical().decode())


def parse_component(text: str) -> Block:
    """A component's text (not a VCALENDAR) as a block; its lines count as new."""
    wrapped = parse(f"BEGIN:VCALENDAR\r\n{text}\r\nEND:VCALENDAR\r\n")
    [inner] = wrapped.blocks()
    for sub in inner.walk():
        for item in [sub.begin, sub.end, *sub.lines()]:
            item.raw = None
    return inner


def with_params(line: Line, changes: Mapping[str, Any]) -> Line:
    """``line`` with parameters set (a value) or removed (None), value and others kept."""
    name, params, value = line.parts()
    for key, new in changes.items():
        if new is None:
            params.pop(key, None)
        else:
            params[key] = new
    if params:
        return Line(f"{name};{params.to_ical(sorted=False).decode()}:{value}")
    return Line(f"{name}:{value}")


def with_value(line: Line, value_text: str, drop: tuple[str, ...] = ()) -> Line:
    """``line`` with a new (already escaped) value; parameters kept except ``drop``."""
    name, params, _ = line.parts()
    for key in drop:
        params.pop(key, None)
    if params:
        return Line(f"{name};{params.to_ical(sorted=False).decode()}:{value_text}")
    return Line(f"{name}:{value_text}")
