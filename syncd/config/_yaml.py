"""YAML text -> plain data, the line of every key, and ``${NAME}`` substitution.

The node tree of ``yaml.compose`` is walked by hand so that every key path (``("bindings",
0, "caldav", "url")``) gets the 1-based line it was written on, duplicate keys are
reported instead of silently overwritten, and ``${NAME}`` in any string is replaced from
the environment mapping passed in (``$${`` writes a literal ``${``). Values taken from the
environment are remembered so error messages can be scrubbed of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"

# LibYAML's parser when PyYAML was built with it: the pure-Python scanner was ~90 % of the
# CPU of loading a 10,000-binding tenant file (12 s); the node tree and marks are the same.
_FAST: type[Any] | None = yaml.CSafeLoader if yaml.__with_libyaml__ else None


class YamlSyntaxError(Exception):
    """Raised by :func:`parse` when the text is not one well-formed YAML document."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Document:
    """A parsed file: ``data`` plus where each key path was written and what went wrong."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[tuple[Loc, str, int]] = field(default_factory=list)  # (path, what, line)
    unresolved: set[Loc] = field(default_factory=set)  # paths with a missing ${NAME}
    secrets: set[str] = field(default_factory=set)  # values taken from the environment

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest written ancestor (for a missing key)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1


def parse(text: str, environ: Mapping[str, str]) -> Document:
    """Parse one YAML document; :class:`YamlSyntaxError` (with its line) if malformed."""
    if _FAST is not None:
        try:
            return _parse(text, environ, _FAST)
        except YamlSyntaxError:
            pass  # reported as the pure-Python parser words it (line and message)
    return _parse(text, environ, yaml.SafeLoader)


def _parse(text: str, environ: Mapping[str, str], make: type[Any]) -> Document:
    loader = make(text)
    try:
        node = loader.get_single_node()
        doc = Document(data=None)
        if node is not None:
            doc.data = _Builder(loader, environ, doc).build(node, ())
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"YAML syntax: {exc.problem or exc.context}") from exc
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, loader: Any, environ: Mapping[str, str], doc: Document):
        self.loader = loader
        self.environ = environ
        self.doc = doc
        self.active: set[int] = set()  # nodes on the current path (recursive aliases)

    def build(self, node: Node, loc: Loc) -> Any:
        self.doc.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in self.active:
            self.doc.problems.append((loc, "a recursive YAML alias", node.start_mark.line + 1))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._scalar(node, loc)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        own = {id(key) for key, _ in node.value if key.tag != _MERGE}
        self.loader.flatten_mapping(node)  # merged pairs first, so written keys override them
        result: dict[str, Any] = {}
        written: dict[str, int] = {}  # line of each key written in this mapping itself
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.doc.problems.append((loc, "keys must be plain strings", line))
                continue
            key = str(key_node.value)
            if id(key_node) in own:
                if key in written:
                    message = f"duplicate key (first at line {written[key]})"
                    self.doc.problems.append(((*loc, key), message, line))
                    continue
                written[key] = line
            self.doc.lines[(*loc, key)] = line
            result[key] = self.build(value_node, (*loc, key))
        return result

    def _scalar(self, node: Node, loc: Loc) -> Any:
        line = node.start_mark.line + 1
        # YAML 1.1 reads 03:00 as the base-60 integer 180: keep such scalars as text.
        if node.tag in (_INT, _FLOAT) and ":" in str(node.value):
            return str(node.value)
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.doc.problems.append((loc, f"YAML: {exc.problem}", line))
            return None
        return self._substitute(value, loc, line) if isinstance(value, str) else value

    def _substitute(self, text: str, loc: Loc, line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            if match[0] == "$${":
                return "${"
            name = match[1]
            value = self.environ.get(name) if _NAME.fullmatch(name) else None
            if value is None:
                bad = not _NAME.fullmatch(name)
                message = (
                    f"bad variable reference ${{{name}}}"
                    if bad
                    else f"environment variable {name} is not set"
                )
                self.doc.problems.append((loc, message, line))
                self.doc.unresolved.add(loc)
                return ""
            self.doc.secrets.add(value)
            return value

        return _REF.sub(replace, text)
