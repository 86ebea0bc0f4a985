"""Line-aware YAML loading and schema checks that collect every problem at once.

Contents
--------
Problem          one ``FILE:LINE: key.path: message`` finding
SchemaError      ValueError carrying every problem of a file
load_yaml        YAML text -> (plain data, line map); YAML 1.1 traps become problems
Checker          typed key checks (numbers, strings, choices, pairs, mappings) that record
                 problems with the line of the offending key instead of raising

Conventions
-----------
* Key paths are tuples of mapping keys (str) and sequence indices (int), shown as
  ``noise.band_cpd`` or ``conditions[1].band_cpd``. Lines are 1-based.
* YAML 1.1 (PyYAML) traps are reported, not guessed around: ``1e-3`` (no dot) is a string,
  unquoted ``no``/``off``/``yes``/``on`` are booleans, ``010`` is octal 8, ``1:30`` is the
  base-60 number 90, and a repeated key silently keeps the last value.
* Hostile documents are refused with their line, before anything large is built: each
  anchored node is read once (aliases share it, as with ``yaml.safe_load``), and a
  document may hold at most :data:`MAX_YAML_VALUES` values and nest at most
  :data:`MAX_YAML_DEPTH` levels, both counted with every alias expanded (alias bombs are
  refused at the alias that crosses the limit). Recursive aliases, characters YAML
  forbids (NUL, other control characters), lone surrogates, several documents in one
  file, and explicit tags other than ``!!str !!int !!float !!bool !!null !!seq !!map``
  (custom ``!tags``, ``!!python/...``, ``!!set``, ``!!omap``, ``!!binary``, ...) on any
  node are refused too.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BAD",
    "MAX_YAML_DEPTH",
    "MAX_YAML_VALUES",
    "Checker",
    "Problem",
    "SchemaError",
    "format_path",
    "load_yaml",
]

Path = tuple[Any, ...]

#: Sentinel returned by :class:`Checker` methods for a value that failed its check.
BAD: Any = type("Bad", (), {"__repr__": lambda self: "BAD", "__bool__": lambda self: False})()


def has_bad(x: Any) -> bool:
    """Whether ``x`` (a value, or nested dicts and lists) holds a value already found invalid."""
    if x is BAD:
        return True
    if isinstance(x, dict):
        return any(has_bad(y) for y in x.values())
    if isinstance(x, list):
        return any(has_bad(y) for y in x)
    return False

_FLOAT_NO_DOT = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*[eE][-+]?\d+$")
_OCTAL = re.compile(r"^[-+]?(0[0-7_]+|0o[0-7_]+)$")
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")
_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def format_path(path: Path) -> str:
    """``("conditions", 1, "band_cpd")`` -> ``"conditions[1].band_cpd"``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One finding: the line (1-based, None if unknown), the key path and the message."""

    line: int | None
    path: str
    message: str

    def format(self, source: str) -> str:
        """``FILE:LINE: key.path: message``."""
        return f"{source}:{self.line if self.line is not None else '?'}: {self.path}: {self.message}"


class SchemaError(ValueError):
    """A file failed validation; ``.problems`` lists every problem, ``str()`` one per line."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = sorted(set(problems), key=lambda p: (p.line or 0, p.path, p.message))
        super().__init__("\n".join(p.format(source) for p in self.problems))

    @property
    def lines(self) -> list[str]:
        """The problems formatted as ``FILE:LINE: key.path: message``."""
        return [p.format(self.source) for p in self.problems]


class _Lines:
    """Where each value (and each mapping key) of a document sits in its file."""

    def __init__(self) -> None:
        self.value: dict[Path, int] = {}
        self.key: dict[Path, int] = {}
        self.text: dict[Path, str] = {}
        # an aliased (or merged) value at path P is read once at path Q: link[P] = Q, and
        # what lies below P is found below Q
        self.link: dict[Path, Path] = {}

    def _follow(self, path: Path, *, exact: bool = False) -> Path:
        """``path`` with any linked prefix (strict, or also the whole path with ``exact``) replaced."""
        p = tuple(path)
        for _ in range(len(self.link) + 1):  # links lead to values read earlier: no cycles
            for i in range(len(p) if exact else len(p) - 1, 0, -1):
                if p[:i] in self.link:
                    p = self.link[p[:i]] + p[i:]
                    break
            else:
                return p
        return p  # pragma: no cover - defensive

    def raw(self, path: Path) -> str | None:
        """The unquoted text of the scalar at ``path`` (None if quoted, not a scalar or unknown)."""
        return self.text.get(self._follow(path, exact=True))

    def of(self, path: Path, *, key: bool = False) -> int | None:
        """Line of ``path`` (its key line with ``key``), else of its nearest ancestor."""
        p = tuple(path)
        if p not in (self.key if key else self.value):
            p = self._follow(p)
        while True:
            table = self.key if key else self.value
            if p in table:
                return table[p]
            if key and p in self.value:
                return self.value[p]
            if not p:
                return None
            p = p[:-1]


#: Most values (mappings, lists, keys and scalars, counted as the document expands every
#: alias) a YAML document may hold. Experiment files hold a few hundred; the limit stops
#: alias bombs ("billion laughs": a few hundred bytes of nested aliases that expand to
#: billions of values) before anything is built.
MAX_YAML_VALUES = 100_000

#: Deepest nesting of mappings and lists a YAML document may have (also counted as the
#: document expands every alias). Experiment files nest about five levels deep.
MAX_YAML_DEPTH = 100

_TAG = "tag:yaml.org,2002:"
#: Tags a document may give explicitly, by node kind (``!`` alone, "no tag", is also fine).
#: Everything else (custom ``!tags``, ``!!python/...``, ``!!set``, ``!!omap``, ``!!binary``,
#: ``!!timestamp``, ...) is refused with its line: stimgen reads plain data only.
_ALLOWED_TAGS = {
    "scalar": {_TAG + t for t in ("str", "int", "float", "bool", "null")},
    "list": {_TAG + "seq"},
    "mapping": {_TAG + "map"},
}
_PLAIN = "stimgen reads plain YAML only (mappings, lists, strings, numbers, true/false, null)"


class _Alias:
    """One use of an alias (``*name``) inside a collection: the anchored node and where."""

    __slots__ = ("anchor", "line", "node")

    def __init__(self, node: Any, anchor: str, line: int) -> None:
        self.node, self.anchor, self.line = node, anchor, line


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def load_yaml(text: str, source: str) -> tuple[Any, _Lines, list[Problem]]:
    """Parse YAML ``text`` into plain data plus a line map, collecting YAML-level problems.

    Each anchored node is read once, however often it is aliased (aliased mappings and lists
    are shared, as :func:`yaml.safe_load` shares them). Hostile documents are refused with
    the line at fault: more than :data:`MAX_YAML_VALUES` values once aliases are expanded
    (alias bombs), nesting deeper than :data:`MAX_YAML_DEPTH`, recursive aliases
    (``&a [*a]``), characters YAML forbids (such as NUL), and explicit tags other than the
    plain ``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``, ``!!seq`` and ``!!map``.

    Parameters
    ----------
    text : str
        The document.
    source : str
        File name, used in messages only.

    Returns
    -------
    data : Any
        Plain Python data (dict/list/scalars), None for an empty document.
    lines : _Lines
        Line of each value and key, by key path.
    problems : list of Problem
        Duplicate keys and YAML 1.1 traps (octal, base-60 numbers).

    Raises
    ------
    SchemaError
        If the text is not well-formed YAML (with the parser's line), or is refused as above.
    """
    import yaml

    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        raise SchemaError(source, [_reader_problem(text, exc)]) from None
    try:
        node = _compose(loader, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        ctx = getattr(exc, "context", None)
        msg = f"malformed YAML: {what}" + (f" ({ctx})" if ctx else "")
        if "\\t" in msg or "\t" in msg:
            msg += "; YAML does not allow tabs for indentation: use spaces"
        raise SchemaError(source, [Problem(line, "(file)", msg)]) from None
    finally:
        loader.dispose()
    lines = _Lines()
    problems: list[Problem] = []
    if node is None:
        return None, lines, problems
    conv = _Converter(loader, source, lines, problems)
    data = conv.value(node, ())
    if conv.unreadable:  # values that could not be built: nothing sensible to check further
        raise SchemaError(source, problems + conv.unreadable)
    return data, lines, problems


def _reader_problem(text: str, exc: Any) -> Problem:
    """A located problem for a character the YAML reader refuses."""
    pos = getattr(exc, "position", None)
    line = text.count("\n", 0, pos) + 1 if isinstance(pos, int) else None
    column = pos - text.rfind("\n", 0, pos) if isinstance(pos, int) else None
    char = getattr(exc, "character", None)
    code = ord(char) if isinstance(char, str) and len(char) == 1 else char
    what = f"U+{code:04X}" if isinstance(code, int) else repr(char)
    if code == 0:
        what += " (NUL)"
    where = f" at column {column}" if column is not None else ""
    msg = (f"malformed YAML: the character {what}{where} is not allowed in YAML (control "
           "characters other than tab and line breaks are refused): remove it")  # fmt: skip
    return Problem(line, "(file)", msg)


def _compose(loader: Any, source: str) -> Any:
    """Compose the single document into nodes, without recursion, refusing hostile shapes.

    Like PyYAML's composer, but an alias stays visible as an :class:`_Alias` (so its own
    line is known), an alias to a node that is still open (a recursive alias) is refused,
    and so is nesting deeper than :data:`MAX_YAML_DEPTH` or more than
    :data:`MAX_YAML_VALUES` nodes.
    """
    import yaml
    from yaml import events, nodes

    def refuse(line: int, path: Path, msg: str) -> SchemaError:
        return SchemaError(source, [Problem(line, format_path(path), msg)])

    loader.get_event()  # stream start
    if loader.check_event(events.StreamEndEvent):
        loader.get_event()
        return None
    loader.get_event()  # document start
    anchors: dict[str, Any] = {}
    open_ids: set[int] = set()
    # open collections: [node, path, key node of the pending mapping value or None]
    stack: list[list[Any]] = []
    root: Any = None
    count = 0
    while True:
        path: Path = ()
        if stack:
            parent, ppath, pending = stack[-1]
            if isinstance(parent, nodes.SequenceNode):
                path = (*ppath, len(parent.value))
            elif pending is not None:
                knode = pending.node if isinstance(pending, _Alias) else pending
                path = (*ppath, knode.value if isinstance(knode, nodes.ScalarNode) else "?")
            else:
                path = ppath
        event = loader.get_event()
        if isinstance(event, events.AliasEvent):
            line = event.start_mark.line + 1
            if event.anchor not in anchors:
                raise refuse(line, path, f"alias *{event.anchor} refers to no anchor &{event.anchor} defined before it")
            target = anchors[event.anchor]
            if id(target) in open_ids:
                raise refuse(line, path, f"recursive alias: *{event.anchor} lies inside the value it refers to "
                             f"(anchor &{event.anchor} on line {_line(target)}), so it would expand without end")  # fmt: skip
            item: Any = _Alias(target, event.anchor, line)
        elif isinstance(event, events.ScalarEvent | events.SequenceStartEvent | events.MappingStartEvent):
            count += 1
            if count > MAX_YAML_VALUES:
                raise refuse(event.start_mark.line + 1, path,
                             f"the document holds more than {MAX_YAML_VALUES:,} values, the limit")  # fmt: skip
            tag, explicit = event.tag, True
            if tag is None or tag == "!":
                explicit = False
            if isinstance(event, events.ScalarEvent):
                if not explicit:
                    tag = loader.resolve(nodes.ScalarNode, event.value, event.implicit)
                item = nodes.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            else:
                kind = nodes.SequenceNode if isinstance(event, events.SequenceStartEvent) else nodes.MappingNode
                if not explicit:
                    tag = loader.resolve(kind, None, event.implicit)
                item = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            item._stimgen_explicit_tag = explicit
            if event.anchor is not None:
                if event.anchor in anchors:
                    first = _line(anchors[event.anchor])
                    raise refuse(event.start_mark.line + 1, path, f"duplicate anchor &{event.anchor} (first defined "
                                 f"on line {first}); YAML anchors must be unique: rename one")  # fmt: skip
                anchors[event.anchor] = item
            if not isinstance(event, events.ScalarEvent):
                open_ids.add(id(item))
                stack.append([item, path, None])
                if len(stack) > MAX_YAML_DEPTH:
                    msg = f"mappings and lists nested more than {MAX_YAML_DEPTH} levels deep, the limit"
                    shown = format_path(path[:3]) + f"...({len(path) - 3} levels more)"
                    raise SchemaError(source, [Problem(event.start_mark.line + 1, shown, msg)])
                continue
        elif isinstance(event, events.SequenceEndEvent | events.MappingEndEvent):
            item, _, _ = stack.pop()
            item.end_mark = event.end_mark
            open_ids.discard(id(item))
        else:  # pragma: no cover - the parser emits nothing else inside a document
            raise yaml.composer.ComposerError(None, None, f"unexpected {type(event).__name__}", event.start_mark)
        if not stack:
            root = item
            break
        top = stack[-1]
        if isinstance(top[0], nodes.SequenceNode):
            top[0].value.append(item)
        elif top[2] is None:
            top[2] = item
        else:
            top[0].value.append((top[2], item))
            top[2] = None
    loader.get_event()  # document end
    if not loader.check_event(events.StreamEndEvent):
        event = loader.get_event()
        msg = "a second YAML document begins here; a stimgen YAML file holds one document: remove the '---'"
        raise SchemaError(source, [Problem(event.start_mark.line + 1, "(file)", msg)])
    return root


class _Converter:
    """Nodes -> plain data, each node once (memoized by identity), with the line map.

    The expanded size and nesting of every value is tracked, so an alias that would make
    the document exceed :data:`MAX_YAML_VALUES` or :data:`MAX_YAML_DEPTH` is refused at
    its own line before anything is copied.
    """

    def __init__(self, loader: Any, source: str, lines: _Lines, problems: list[Problem]) -> None:
        self.loader, self.source, self.lines, self.problems = loader, source, lines, problems
        self.unreadable: list[Problem] = []
        self.memo: dict[int, tuple[Any, Path]] = {}  # id(node) -> (value, path first read at)
        self.size: dict[int, int] = {}  # id(dict or list built here) -> expanded values
        self.height: dict[int, int] = {}  # id(dict or list built here) -> nesting levels
        self.total = 0

    def _measure(self, value: Any) -> tuple[int, int]:
        if isinstance(value, dict | list):
            return self.size[id(value)], self.height[id(value)]
        return 1, 0

    def _count(self, n: int, line: int, path: Path, why: str = "") -> None:
        self.total += n
        if self.total > MAX_YAML_VALUES:
            msg = f"{why}the document expands to more than {MAX_YAML_VALUES:,} values, the limit"
            raise SchemaError(self.source, [Problem(line, format_path(path), msg)])

    def _refuse_tag(self, node: Any, kind: str, path: Path) -> bool:
        if not getattr(node, "_stimgen_explicit_tag", False) or node.tag in _ALLOWED_TAGS[kind]:
            return False
        tag = _short_tag(str(node.tag))
        if tag.startswith("!") and not tag.startswith("!!"):
            msg = f"cannot read this value: unknown tag {tag!r}; custom tags such as {tag} are not supported: remove the tag"
        elif any(node.tag in tags for tags in _ALLOWED_TAGS.values()):
            msg = f"cannot read this value: the tag {tag!r} cannot be given to a {kind}: remove the tag"
        else:
            msg = f"cannot read this value: the tag {tag!r} is not supported; {_PLAIN}: remove the tag"
        self.unreadable.append(Problem(_line(node), format_path(path), msg))
        return True

    def value(self, item: Any, path: Path) -> Any:
        """The plain value of ``item`` (a node or an alias) read at ``path``."""
        import yaml

        node = item.node if isinstance(item, _Alias) else item
        line = item.line if isinstance(item, _Alias) else _line(node)
        self.lines.value[path] = line
        if id(node) in self.memo:  # read before: share it, count its expanded size here
            value, first = self.memo[id(node)]
            self.lines.link[path] = first
            size, height = self._measure(value)
            name = f"*{item.anchor}" if isinstance(item, _Alias) else "this value"
            if len(path) + height > MAX_YAML_DEPTH:
                msg = (f"alias {name} nests values {len(path) + height} levels deep here, more than "
                       f"{MAX_YAML_DEPTH}, the limit")  # fmt: skip
                raise SchemaError(self.source, [Problem(line, format_path(path), msg)])
            self._count(size, line, path, f"alias {name} repeats {size:,} values (anchor on line {_line(node)}); with it ")
            return value
        self._count(1, line, path)
        if isinstance(node, yaml.MappingNode):
            value = None if self._refuse_tag(node, "mapping", path) else self._mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            value = None
            if not self._refuse_tag(node, "list", path):
                value = [self.value(n, (*path, i)) for i, n in enumerate(node.value)]
                sizes = [self._measure(v) for v in value]
                self.size[id(value)] = 1 + sum(s for s, _ in sizes)
                self.height[id(value)] = 1 + max((h for _, h in sizes), default=0)
        else:
            value = None if self._refuse_tag(node, "scalar", path) else self._scalar(node, path)
        self.memo[id(node)] = (value, path)
        return value

    def _construct(self, node: Any, path: Path) -> Any:
        """``loader.construct_object``; a value it cannot build becomes a located problem."""
        import yaml

        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            what = getattr(exc, "problem", None) or " ".join(str(exc).split())
            msg = f"cannot read this value: {what}"
        except (ValueError, TypeError, OverflowError) as exc:
            tag = str(node.tag).rsplit(":", 1)[-1]
            raw = str(getattr(node, "value", ""))
            shown = repr(raw) if len(raw) <= 60 else f"{raw[:40]!r}... ({len(raw):,} characters)"
            msg = f"cannot read {shown} as {tag}: {exc}"
        else:
            bad = _SURROGATE.search(value) if isinstance(value, str) else None
            if bad is None:
                return value
            msg = (f"cannot read this value: it holds the lone surrogate U+{ord(bad.group()):04X} "
                   "(from a \\u escape), which is not a character and cannot be written as UTF-8")  # fmt: skip
        self.unreadable.append(Problem(_line(node), format_path(path), msg))
        return None

    def _scalar(self, node: Any, path: Path) -> Any:
        value = self._construct(node, path)
        if node.style is None:  # plain (unquoted) scalar: where YAML 1.1 surprises people
            raw = node.value
            self.lines.text[path] = raw
            line = _line(node)
            if node.tag.endswith(":int") and _OCTAL.match(raw):
                digits = raw.lstrip("+-").lstrip("0o").replace("_", "") or "0"
                self.problems.append(
                    Problem(
                        line,
                        format_path(path),
                        f"{raw} is read by YAML 1.1 as the octal number {value}; write {int(digits)} "
                        "without the leading zero (or quote it if you mean text)",
                    )
                )
            elif node.tag.endswith((":int", ":float")) and _SEXAGESIMAL.match(raw):
                self.problems.append(
                    Problem(
                        line,
                        format_path(path),
                        f"{raw} is read by YAML 1.1 as the base-60 number {value}; quote it if you mean text",
                    )
                )
        return value

    def _key(self, item: Any, path: Path) -> Any:
        """A mapping key: a scalar (possibly aliased), as a string unless null; BAD if not."""
        import yaml

        knode = item.node if isinstance(item, _Alias) else item
        line = item.line if isinstance(item, _Alias) else _line(knode)
        if not isinstance(knode, yaml.ScalarNode):
            self.problems.append(Problem(line, format_path(path), "keys must be plain names"))
            return BAD
        if self._refuse_tag(knode, "scalar", path):
            return BAD
        if knode.tag == _TAG + "value":  # the YAML 1.1 '=' key is read as text, as PyYAML does
            return knode.value
        key = self._construct(knode, path)
        return str(key) if not isinstance(key, str) and key is not None else key

    def _merge_sources(self, item: Any, mpath: Path, line: int) -> list[tuple[dict[str, Any], Path]]:
        """The mappings a ``<<`` key merges, highest precedence last (as PyYAML applies them)."""
        import yaml

        node = item.node if isinstance(item, _Alias) else item
        if isinstance(node, yaml.SequenceNode):
            self.lines.value[mpath] = line
            subs = [(sub, (*mpath, i)) for i, sub in enumerate(node.value)][::-1]
        else:
            subs = [(item, mpath)]
        out = []
        for sub, spath in subs:
            snode = sub.node if isinstance(sub, _Alias) else sub
            if not isinstance(snode, yaml.MappingNode):
                what = "a list" if isinstance(snode, yaml.SequenceNode) else "a scalar"
                self.unreadable.append(Problem(sub.line if isinstance(sub, _Alias) else _line(snode),
                                               format_path(spath),
                                               f"cannot merge: expected a mapping or list of mappings for "
                                               f"merging, but found {what}"))  # fmt: skip
                continue
            total = self.total  # the merged mapping itself is not part of the document
            value = self.value(sub, spath)
            self.total = total if isinstance(sub, _Alias) else self.total
            if isinstance(value, dict):
                out.append((value, self.memo[id(snode)][1]))
        return out

    def _mapping(self, node: Any, path: Path) -> dict[str, Any]:
        out: dict[Any, Any] = {}
        merged: dict[Any, tuple[Any, Path]] = {}  # key -> (value, path of the mapping it came from)
        for knode, vitem in node.value:
            target = knode.node if isinstance(knode, _Alias) else knode
            kline = knode.line if isinstance(knode, _Alias) else _line(target)
            if getattr(target, "tag", None) == _TAG + "merge" and not getattr(target, "_stimgen_explicit_tag", False):
                # YAML merge (``<<: *base``): merged pairs come first, explicit keys override
                # them silently; of several merged mappings the first listed wins.
                for source_map, spath in self._merge_sources(vitem, (*path, "<<"), kline):
                    for k, v in source_map.items():
                        merged[k] = (v, spath)
                continue
            key = self._key(knode, path)
            if key is BAD:
                continue
            kpath = (*path, key)
            self._count(1, kline, kpath)
            if key in out:
                self.problems.append(
                    Problem(
                        kline,
                        format_path(kpath),
                        f"duplicate key (first given on line {self.lines.key[kpath]}); "
                        "YAML would silently keep only the last one",
                    )
                )
            self.lines.key[kpath] = kline
            out[key] = self.value(vitem, kpath)
        if merged:
            line = _line(node)
            full: dict[Any, Any] = {}
            for k, (v, spath) in merged.items():
                if k in out:
                    continue
                kpath, src = (*path, k), (*spath, k)
                self.lines.key[kpath] = self.lines.of(src, key=True) or line
                self.lines.value[kpath] = self.lines.of(src) or line
                self.lines.link[kpath] = src
                size, height = self._measure(v)
                if len(kpath) + height > MAX_YAML_DEPTH:
                    msg = f"merged values nest {len(kpath) + height} levels deep here, more than {MAX_YAML_DEPTH}, the limit"
                    raise SchemaError(self.source, [Problem(line, format_path(kpath), msg)])
                self._count(1 + size, line, kpath, "merged keys ")
                full[k] = v
            full.update(out)  # explicit keys override, and come after the merged ones
            out = {k: full[k] for k in [*merged, *out] if k in full}
        sizes = [self._measure(v) for v in out.values()]
        self.size[id(out)] = 1 + sum(1 + s for s, _ in sizes)
        self.height[id(out)] = 1 + max((h for _, h in sizes), default=0)
        return out


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


class Checker:
    """Typed checks that record problems (with lines) and return :data:`BAD` on failure.

    Parameters
    ----------
    lines : _Lines
        Line map from :func:`load_yaml` (an empty one for data that did not come from a file).
    problems : list of Problem, optional
        Problems found so far; appended to.
    """

    def __init__(self, lines: _Lines | None = None, problems: list[Problem] | None = None) -> None:
        self.lines = lines if lines is not None else _Lines()
        self.problems: list[Problem] = problems if problems is not None else []

    # -- recording -----------------------------------------------------------------------
    def add(self, path: Path, message: str, *, key: bool = False) -> None:
        """Record a problem at ``path`` (at its key's line with ``key``)."""
        self.problems.append(Problem(self.lines.of(path, key=key), format_path(path), message))

    def _wrong(self, path: Path, value: Any, want: str) -> Any:
        hint = ""
        raw = self.lines.raw(path)
        if isinstance(value, str) and raw is not None and _FLOAT_NO_DOT.match(raw) and "number" in want:
            mant, _, exp = raw.lower().partition("e")
            fixed = (mant if "." in mant else mant + ".0") + "e" + (exp if exp[:1] in "+-" else "+" + exp)
            hint = (f" (YAML 1.1 reads {raw} as text: a number in exponent form needs a decimal "
                    f"point and a signed exponent, write {fixed})")  # fmt: skip
        elif isinstance(value, bool) and raw is not None and raw.lower() in _BOOL_WORDS:
            hint = f" (YAML 1.1 reads unquoted {raw} as a boolean: quote it, '{raw}')"
            if "one of" in want and "none" in want and raw.lower() in ("no", "off", "n"):
                hint = f" (YAML 1.1 reads unquoted {raw} as the boolean false: did you mean none?)"
        self.add(path, f"must be {want}, got {_type_name(value)}{hint}")
        return BAD

    # -- scalars -------------------------------------------------------------------------
    def number(
        self,
        path: Path,
        value: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        integer: bool = False,
    ) -> Any:
        """A finite int/float inside the given bounds (an int with ``integer``)."""
        want = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self._wrong(path, value, want)
        if integer and not isinstance(value, int):
            if not (math.isfinite(value) and value == int(value)):
                return self._wrong(path, value, want)
            value = int(value)
        if not math.isfinite(value):
            return self._wrong(path, value, "a finite number")
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            lb = "(" if low_open or low is None else "["
            hb = ")" if high_open or high is None else "]"
            self.add(path, f"must be in {lb}{lo}, {hi}{hb}, got {value!r}")
            return BAD
        return value

    def string(self, path: Path, value: Any, *, pattern: str | None = None, what: str = "") -> Any:
        """A string, optionally matching ``pattern`` (described by ``what``)."""
        if not isinstance(value, str):
            return self._wrong(path, value, "a string" + (f" ({what})" if what else ""))
        if pattern is not None and not re.fullmatch(pattern, value):
            self.add(path, f"must be {what}, got {value!r}")
            return BAD
        return value

    def choice(self, path: Path, value: Any, choices: Sequence[str]) -> Any:
        """One of ``choices`` (the message lists them and suggests the closest)."""
        listed = ", ".join(choices)
        if not isinstance(value, str):
            return self._wrong(path, value, f"one of {listed}")
        if value not in choices:
            self.add(path, f"must be one of {listed}; got {value!r}{_did_you_mean(value, choices)}")
            return BAD
        return value

    def boolean(self, path: Path, value: Any) -> Any:
        """true or false."""
        if not isinstance(value, bool):
            return self._wrong(path, value, "true or false")
        return value

    def numbers(self, path: Path, value: Any, *, length: int | None = None, **bounds: Any) -> Any:
        """A list of numbers (of ``length``), each checked with :meth:`number`."""
        if not isinstance(value, list):
            return self._wrong(path, value, f"a list of {length or ''} numbers".replace("  ", " "))
        if length is not None and len(value) != length:
            self.add(path, f"must be a list of {length} numbers, got {len(value)}: {value!r}")
            return BAD
        out = [self.number((*path, i), x, **bounds) for i, x in enumerate(value)]
        return BAD if any(x is BAD for x in out) else out

    # -- containers ----------------------------------------------------------------------
    def mapping(
        self,
        path: Path,
        value: Any,
        allowed: Iterable[str],
        *,
        required: Iterable[str] = (),
        elsewhere: dict[str, str] | None = None,
    ) -> Any:
        """A mapping whose keys are all in ``allowed``; unknown keys get a did-you-mean.

        ``elsewhere`` maps keys that belong to another section to that section's name, for
        a "belongs in ..." hint. Returns the mapping restricted to known keys (or BAD).
        """
        allowed = list(allowed)
        if not isinstance(value, dict):
            return self._wrong(path, value, "a mapping of " + ", ".join(allowed))
        known = {}
        for k, val in value.items():
            if k in allowed:
                known[k] = val
                continue
            where = (elsewhere or {}).get(k)
            if where is not None:
                msg = f"unknown key {k!r} here; it belongs in {where}"
            else:
                msg = f"unknown key {k!r}{_did_you_mean(k, allowed)} (allowed: {', '.join(allowed)})"
            self.add((*path, k), msg, key=True)
        for k in required:
            if k not in value or value[k] is None:
                self.add(path, f"missing required key {k!r}", key=True)
        return known
