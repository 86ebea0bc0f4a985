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
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BAD", "Checker", "Problem", "SchemaError", "format_path", "load_yaml"]

Path = tuple[Any, ...]

#: Sentinel returned by :class:`Checker` methods for a value that failed its check.
BAD: Any = type("Bad", (), {"__repr__": lambda self: "BAD", "__bool__": lambda self: False})()

_FLOAT_NO_DOT = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*[eE][-+]?\d+$")
_OCTAL = re.compile(r"^[-+]?(0[0-7_]+|0o[0-7_]+)$")
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")
_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n"}


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

    def of(self, path: Path, *, key: bool = False) -> int | None:
        """Line of ``path`` (its key line with ``key``), else of its nearest ancestor."""
        p = tuple(path)
        while True:
            table = self.key if key else self.value
            if p in table:
                return table[p]
            if key and p in self.value:
                return self.value[p]
            if not p:
                return None
            p = p[:-1]


def load_yaml(text: str, source: str) -> tuple[Any, _Lines, list[Problem]]:
    """Parse YAML ``text`` into plain data plus a line map, collecting YAML-level problems.

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
        If the text is not well-formed YAML (with the parser's line).
    """
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
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
    unreadable: list[Problem] = []
    data = _convert(node, (), loader, lines, problems, unreadable)
    if unreadable:  # values that could not be built: nothing sensible to check further
        raise SchemaError(source, problems + unreadable)
    return data, lines, problems


def _construct(node: Any, path: Path, loader: Any, unreadable: list[Problem]) -> Any:
    """``loader.construct_object``; a tag or value it cannot build becomes a located problem."""
    import yaml

    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        what = getattr(exc, "problem", None) or " ".join(str(exc).split())
        msg = f"cannot read this value: {what}"
        if str(node.tag).startswith("!") and not str(node.tag).startswith("!!"):
            msg += f"; custom tags such as {node.tag} are not supported: remove the tag"
    except (ValueError, TypeError, OverflowError) as exc:
        tag = str(node.tag).rsplit(":", 1)[-1]
        msg = f"cannot read {getattr(node, 'value', '')!r} as {tag}: {exc}"
    unreadable.append(Problem(node.start_mark.line + 1, format_path(path), msg))
    return None


def _convert(node: Any, path: Path, loader: Any, lines: _Lines, problems: list[Problem],
             unreadable: list[Problem]) -> Any:  # fmt: skip
    import yaml

    lines.value[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        # YAML merge (``<<: *base``): merged pairs come first, explicit keys override them
        # silently; only a key given twice explicitly is a duplicate. The explicit keys are
        # noted once per node: flattening rewrites the node (an alias visits it again).
        explicit = getattr(node, "_stimgen_explicit", None)
        if explicit is None:
            explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            node._stimgen_explicit = explicit
        try:
            loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            what = getattr(exc, "problem", None) or " ".join(str(exc).split())
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else node.start_mark.line + 1
            unreadable.append(Problem(line, format_path(path), f"cannot merge: {what}"))
            return None
        out: dict[Any, Any] = {}
        from_merge: set[Any] = set()
        for knode, vnode in node.value:
            key = _construct(knode, path, loader, unreadable)
            if isinstance(key, list | dict):
                problems.append(Problem(knode.start_mark.line + 1, format_path(path), "keys must be plain names"))
                continue
            key = str(key) if not isinstance(key, str) and key is not None else key
            kpath = (*path, key)
            merged = id(knode) not in explicit
            if key in out and (merged or key in from_merge):
                from_merge.discard(key)  # a merged value overridden: YAML keeps the later one
            elif key in out:
                problems.append(
                    Problem(
                        knode.start_mark.line + 1,
                        format_path(kpath),
                        f"duplicate key (first given on line {lines.key[kpath]}); "
                        "YAML would silently keep only the last one",
                    )
                )
            if merged:
                from_merge.add(key)
            lines.key[kpath] = knode.start_mark.line + 1
            out[key] = _convert(vnode, kpath, loader, lines, problems, unreadable)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(n, (*path, i), loader, lines, problems, unreadable) for i, n in enumerate(node.value)]
    value = _construct(node, path, loader, unreadable)
    if node.style is None:  # plain (unquoted) scalar: where YAML 1.1 surprises people
        raw = node.value
        lines.text[path] = raw
        line = node.start_mark.line + 1
        if node.tag.endswith(":int") and _OCTAL.match(raw):
            digits = raw.lstrip("+-").lstrip("0o").replace("_", "") or "0"
            problems.append(
                Problem(
                    line,
                    format_path(path),
                    f"{raw} is read by YAML 1.1 as the octal number {value}; write {int(digits)} "
                    "without the leading zero (or quote it if you mean text)",
                )
            )
        elif node.tag.endswith((":int", ":float")) and _SEXAGESIMAL.match(raw):
            problems.append(
                Problem(
                    line,
                    format_path(path),
                    f"{raw} is read by YAML 1.1 as the base-60 number {value}; quote it if you mean text",
                )
            )
    return value


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
        raw = self.lines.text.get(tuple(path))
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
