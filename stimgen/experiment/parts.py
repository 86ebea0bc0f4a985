"""Stimulus parts: what a stimulus is composed of, and the registry of them.

A stimulus of an experiment is composed of *parts* (noise, its motion; targets, apertures
and image sources next). Each part is one small object that owns one top-level section of
the experiment file and declares, next to its code:

* its YAML keys, their defaults and their checks, with line-aware errors
  (:meth:`Part.check_section`, :meth:`Part.check_value`, :meth:`Part.check_condition`);
* how to draw it from ``(plan, condition, rng)`` (:meth:`Part.draw`);
* what it adds to the manifest entry of each stimulus (:meth:`Part.record`,
  :meth:`Part.measure`), to each condition's summary (:meth:`Part.summary`, from what it
  pooled of the condition's stimuli as they arrived: :meth:`Part.pool`,
  :meth:`Part.pool_add`) and to the manifest itself (:meth:`Part.manifest_fields`);
* what ``verify`` re-checks (:meth:`Part.verify` per stimulus, :meth:`Part.verify_summary`
  per condition), and its figures (:meth:`Part.condition_figures`, drawn as soon as a
  condition is complete; :meth:`Part.figures` once the set is).

The runner, the manifest writer and verify loop over :data:`PARTS` (in registration order)
and know none of the parts by name. Adding a kind of stimulus means writing one class
(derive from :class:`BasePart` for no-op defaults) and calling :func:`register` where it is
defined; ``docs/extending.md`` walks through one.

Conventions
-----------
* A part is *active* in an experiment when its section is given (required parts always are).
* The keys a condition or the factorial may vary (``condition_keys``) share one namespace
  across parts and the ``stimulus`` section's ``rms_contrast`` and ``mean``: a condition's
  ``params`` hold them all, resolved.
  A part may spell them with its section's name (``target.contrast``; see
  :func:`section_key`) so that a key of the same name in another section (the noise's
  ``orientation_deg``) is never taken for it.
* Parts draw in registration order into one :class:`Drawing`, all from the stimulus' one
  generator; a part may take over the drawing of parts it builds on (``supersedes``: motion
  draws its noise as a movie). The sum is clipped to [-1, 1] once, after every part drew.
  A part that composes leaves what it composed in ``Drawing.components`` (the noise
  before a target and an aperture, the target, the window); each part measures its own
  component when there is one (:meth:`BasePart.measure_drawing`), so the noise part checks
  the noise, not a Gabor in it.
* A part's checks report ``passed`` (True/False, or None when it checked nothing); the
  stimulus' ``pass`` is true when no active part failed. Summary fields of several parts
  that are mappings under one key (``measured``) are merged.
* Stimuli arrive in index order and are not kept: a part pools what its summary and
  figures need (a running mean, a few numbers per stimulus), never the stimuli.
* A part defined outside the package is found by worker processes by importing its module
  (``type(part).__module__``); define it in an importable module to run with several jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .._yamlschema import BAD, Checker
from .keys import FRAME_KEYS, FRAME_SECTIONS

if TYPE_CHECKING:  # the plan imports this module; these are for annotations only
    from .plan import Condition, Plan

__all__ = ["PARTS", "BasePart", "Drawing", "FailsCheck", "Measured", "Part", "active_parts", "register"]


@dataclass
class Drawing:
    """A stimulus being drawn: its values so far and what the parts recorded.

    Attributes
    ----------
    index, entropy : int
        The stimulus' index in the plan and the set's seed entropy: its generator is
        ``default_rng(SeedSequence(entropy, spawn_key=(index,)))``.
    data : ndarray or None
        Signed contrast, shape (H, W) for an image or (T, H, W) for a movie; None until a
        part draws.
    frame_rate_hz : float or None
        Frames per second of a movie (set by the part that makes movies).
    records : dict
        Manifest fields a part recorded while drawing (e.g. ``motion_record``); they go
        into the stimulus' entry and into :func:`stimgen.experiment.generate_stimulus`'s info.
    components : dict of str to ndarray
        What the stimulus is composed of, left by the parts for measuring and figures (not
        written): ``noise`` (the noise before any aperture), ``target`` (before any
        aperture), ``window`` (the aperture) and ``noise_shown`` (the noise as it is in
        the stimulus: windowed, or masked). A part whose name is a key here measures
        and verifies that component instead of the composite (the noise part checks the
        spectrum of the noise, not of a Gabor in it).
    """

    index: int
    entropy: int
    data: np.ndarray | None = None
    frame_rate_hz: float | None = None
    records: dict[str, Any] = field(default_factory=dict)
    components: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Measured:
    """What a part measured of one stimulus or of one condition.

    Attributes
    ----------
    fields : dict
        Added to the stimulus' manifest entry (or the condition's summary).
    passed : bool or None
        Whether the part's check passed; None when it checked nothing.
    extra : object
        Handed to the part's :meth:`Part.pool_add` for the condition's summary and figures,
        not stored (e.g. the stimulus' radial power spectrum).
    not_measurable : str or None
        Why the part's quantity cannot be measured (e.g. a band edge below 2 cycles per
        image); the stimulus is then neither passed nor failed unless another check fails.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    passed: bool | None = None
    extra: Any = None
    not_measurable: str | None = None


def combine_verdicts(measured: list[tuple[str, Measured]]) -> tuple[bool | None, str | None]:
    """One verdict from the parts' checks: False if any failed; else None (not measurable,
    with the reasons) if any could not measure; else True."""
    if any(m.passed is False for _, m in measured):
        return False, None
    why = [f"{name}: {m.not_measurable}" for name, m in measured if m.not_measurable]
    return (None, "; ".join(why)) if why else (True, None)


class FailsCheck(str):
    """A message of :meth:`Part.verify` saying that an intact stimulus fails its design check.

    Return ``FailsCheck("...")`` instead of a plain string when the stimulus read back
    measures like the manifest says but fails the part's check (e.g. re-measured from PNG
    levels): ``verify`` lists it under ``failed_checks`` (exit status 3), not as damage.
    """


@runtime_checkable
class Part(Protocol):
    """One part of a stimulus: its section of the experiment file and everything it does.

    Attributes
    ----------
    name : str
        The top-level YAML section it owns (and the registry key).
    required : bool
        Every experiment must give the section.
    defaults : mapping
        Every key of the section and its default (the resolved section holds them all).
    condition_keys : tuple of str
        Keys that ``conditions`` and ``factorial`` may vary (their base value is the section's).
    nullable : tuple of str
        Keys whose ``null`` is a value ("none"), not "use the default".
    tolerances : mapping
        Keys it adds to the ``check`` section: ``key -> (default, bounds)``, bounds as
        keyword arguments of :meth:`stimgen._yamlschema.Checker.number`.
    movie : bool
        An experiment with this section makes (T, H, W) movies.
    supersedes : tuple of str
        Parts whose drawing this part does itself when both are active.
    checks : str or None
        What it checks, in a phrase ("spectrum", "speed"), for verify's messages.
    absent_hint : str
        Error for a condition key of this part in an experiment without its section
        (``{}`` is the key).
    example : mapping or None
        A small section that makes a quick valid experiment (with the required parts'
        examples); the tests run every registered part through it.
    """

    @property
    def name(self) -> str: ...

    @property
    def required(self) -> bool: ...

    @property
    def defaults(self) -> Mapping[str, Any]: ...

    @property
    def condition_keys(self) -> tuple[str, ...]: ...

    @property
    def nullable(self) -> tuple[str, ...]: ...

    @property
    def tolerances(self) -> Mapping[str, tuple[Any, dict[str, Any]]]: ...

    @property
    def movie(self) -> bool: ...

    @property
    def supersedes(self) -> tuple[str, ...]: ...

    @property
    def checks(self) -> str | None: ...

    @property
    def absent_hint(self) -> str: ...

    @property
    def example(self) -> Mapping[str, Any] | None: ...


    def check_section(self, ck: Checker, value: Any) -> Any:
        """The section, validated, every default filled in (or BAD)."""

    def check_value(self, ck: Checker, path: tuple, key: str, value: Any) -> Any:
        """One value of one of its keys (in the section, a condition or the factorial)."""

    def check_keys(self, ck: Checker, path: tuple, given: Mapping[str, Any]) -> None:
        """Rules across the keys given together in its section or in one condition."""

    def resolve_condition(self, params: dict[str, Any], own: Mapping[str, Any]) -> None:
        """Adjust the base parameters before a condition's own keys override them, in place."""

    def check_condition(self, ck: Checker, exp: Mapping[str, Any], c: Condition,
                        shape: tuple[int, int], ppd: float) -> bool:  # fmt: skip
        """A resolved condition can be made (errors at the key that causes them); False stops."""

    def draw(self, plan: Plan, c: Condition, rng: np.random.Generator, drawing: Drawing) -> None:
        """Draw this part into ``drawing`` with the stimulus' generator."""

    def record(self, plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
        """Manifest-entry fields known without measuring (design values, records)."""

    def measure(self, plan: Plan, c: Condition, data: np.ndarray, entry: Mapping[str, Any]) -> Measured:
        """Measure one stimulus as made (clipped), given its entry so far."""

    def n_frames(self, plan: Plan) -> int | None:
        """Frames of each stimulus when this part makes movies (None: it does not say)."""

    def pool(self, plan: Plan, c: Condition) -> Any:
        """A fresh accumulator of one condition's stimuli (None: it pools nothing)."""

    def pool_add(self, plan: Plan, c: Condition, pool: Any, entry: Mapping[str, Any], extra: Any) -> None:
        """Add one stimulus (its entry and this part's ``Measured.extra``) to ``pool``, in place."""

    def summary(self, plan: Plan, c: Condition, pool: Any) -> Measured:
        """A condition's summary from what :meth:`pool_add` pooled of its stimuli."""

    def manifest_fields(self, plan: Plan) -> dict[str, Any]:
        """Top-level manifest fields (once per set)."""

    def verify(self, plan: Plan, c: Condition, entry: Mapping[str, Any], data: np.ndarray, exact: bool) -> str | None:
        """Re-check a stimulus read back from its file (``exact``: the float ``.npy``); a failure message or None."""

    def verify_summary(self, plan: Plan, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                       data: Iterable[np.ndarray], exact: bool) -> str | None:  # fmt: skip
        """Re-check a condition's summary from its stimuli read back (``data``, lazily, in order)."""

    def warnings(self, plan: Plan) -> list[str]:
        """Warnings about the plan, given once before generating."""

    def condition_figures(self, plan: Plan, c: Condition, pool: Any, summary: Mapping[str, Any], root: Path) -> list[str]:
        """Write a condition's figures under ``root`` as soon as it is complete (relative paths returned)."""

    def figures(self, plan: Plan, pools: Mapping[int, Any], summaries: Sequence[Mapping[str, Any]], root: Path) -> list[str]:
        """Write its figures of the whole set under ``root`` (``pools``: its pool of each condition by index)."""

    def caption(self, summary: Mapping[str, Any]) -> str | None:
        """A phrase for the figure titles of a condition (e.g. its measured speed)."""


class BasePart:
    """No-op defaults for every member of :class:`Part`; a part overrides what it does."""

    name: str = ""
    required: bool = False
    defaults: Mapping[str, Any] = {}
    condition_keys: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()
    tolerances: Mapping[str, tuple[Any, dict[str, Any]]] = {}
    movie: bool = False
    supersedes: tuple[str, ...] = ()
    checks: str | None = None
    example: Mapping[str, Any] | None = None

    @property
    def absent_hint(self) -> str:
        return "{} belongs to the " + self.name + " section; add a " + self.name + " section"

    def check_section(self, ck: Checker, value: Any) -> Any:
        """Each given key checked by :meth:`check_value`; missing keys take their defaults."""
        m = ck.mapping((self.name,), value, self.defaults, elsewhere=elsewhere())
        if m is BAD:
            return BAD
        out = dict(self.defaults)
        for k, val in m.items():
            if val is not None:  # null: the default (or, for nullable keys, none)
                out[k] = self.check_value(ck, (self.name, k), k, val)
        self.check_keys(ck, (self.name,), m)
        return out

    def check_value(self, ck: Checker, path: tuple, key: str, value: Any) -> Any:
        return value

    def check_keys(self, ck: Checker, path: tuple, given: Mapping[str, Any]) -> None:
        return None

    def resolve_condition(self, params: dict[str, Any], own: Mapping[str, Any]) -> None:
        return None

    def check_condition(self, ck: Checker, exp: Mapping[str, Any], c: Condition,
                        shape: tuple[int, int], ppd: float) -> bool:  # fmt: skip
        return True

    def draw(self, plan: Plan, c: Condition, rng: np.random.Generator, drawing: Drawing) -> None:
        return None

    def record(self, plan: Plan, c: Condition, drawing: Drawing) -> dict[str, Any]:
        return {}

    def measure(self, plan: Plan, c: Condition, data: np.ndarray, entry: Mapping[str, Any]) -> Measured:
        return Measured()

    def measure_drawing(self, plan: Plan, c: Condition, drawing: Drawing, entry: Mapping[str, Any]) -> Measured:
        """Measure from the whole drawing (its components); by default :meth:`measure` of the
        part's own component (``drawing.components[name]``) or else of the stimulus."""
        data = drawing.components.get(self.name, drawing.data)
        assert data is not None
        return self.measure(plan, c, data, entry)

    def n_frames(self, plan: Plan) -> int | None:
        return None

    def pool(self, plan: Plan, c: Condition) -> Any:
        return None

    def pool_add(self, plan: Plan, c: Condition, pool: Any, entry: Mapping[str, Any], extra: Any) -> None:
        return None

    def summary(self, plan: Plan, c: Condition, pool: Any) -> Measured:
        return Measured()

    def manifest_fields(self, plan: Plan) -> dict[str, Any]:
        return {}

    def verify(self, plan: Plan, c: Condition, entry: Mapping[str, Any], data: np.ndarray, exact: bool) -> str | None:
        return None

    def verify_summary(self, plan: Plan, c: Condition, summary: Mapping[str, Any], entries: Sequence[Mapping[str, Any]],
                       data: Iterable[np.ndarray], exact: bool) -> str | None:  # fmt: skip
        return None

    def warnings(self, plan: Plan) -> list[str]:
        return []

    def condition_figures(self, plan: Plan, c: Condition, pool: Any, summary: Mapping[str, Any], root: Path) -> list[str]:
        return []

    def figures(self, plan: Plan, pools: Mapping[int, Any], summaries: Sequence[Mapping[str, Any]], root: Path) -> list[str]:
        return []

    def caption(self, summary: Mapping[str, Any]) -> str | None:
        return None


#: The registered parts by section name, in registration (drawing) order.
PARTS: dict[str, Part] = {}

#: Keys the ``stimulus`` section owns that conditions may vary too (applied by the parts).
CONTRAST_KEYS = ("rms_contrast", "mean")


def register(part: Part) -> Part:
    """Add a part to :data:`PARTS` (replacing a part of the same name); returns it.

    Raises
    ------
    ValueError
        If its name is a section of the experiment frame, or one of its condition keys or
        tolerances is already another part's.
    """
    if not isinstance(part, Part):
        raise ValueError(f"part must implement the Part protocol (see BasePart), got {part!r}")
    if part.name in FRAME_KEYS or not part.name.isidentifier():
        raise ValueError(f"part name must be a new section name, got {part.name!r} (taken: {', '.join(FRAME_KEYS)})")
    others = [p for n, p in PARTS.items() if n != part.name]
    for key in part.condition_keys:
        if key in CONTRAST_KEYS or any(key in p.condition_keys for p in others):
            raise ValueError(f"part {part.name!r}: condition key {key!r} is already used by another section")
    for key in part.tolerances:
        if any(key in p.tolerances for p in others):
            raise ValueError(f"part {part.name!r}: check key {key!r} is already another part's")
    missing = {section_key(part, k) for k in part.condition_keys} - set(part.defaults)
    if missing:
        raise ValueError(f"part {part.name!r}: condition keys {sorted(missing)} are not keys of its section")
    PARTS[part.name] = part
    return part


def active_parts(exp: Mapping[str, Any]) -> list[Part]:
    """The parts an experiment uses (its sections given), in drawing order.

    Raises
    ------
    ValueError
        If the experiment has a section no registered part owns.
    """
    unknown = [k for k, v in exp.items() if k not in FRAME_KEYS and k not in PARTS and v is not None]
    if unknown:
        raise ValueError(f"no stimulus part is registered for section(s) {', '.join(map(repr, unknown))} "
                         "(import the module that defines the part)")  # fmt: skip
    return [p for p in PARTS.values() if p.required or exp.get(p.name) is not None]


def section_key(part: Part, key: str) -> str:
    """The key of ``part``'s section that condition key ``key`` varies.

    A part may spell its condition keys with its section's name (``target.contrast``), so
    that they cannot be mistaken for another part's key of the same name
    (``orientation_deg`` is the noise's; ``target.orientation_deg`` the target's).
    """
    return key.removeprefix(part.name + ".")


def owner_of(key: str) -> Part | None:
    """The registered part whose condition keys include ``key``."""
    for p in PARTS.values():
        if key in p.condition_keys:
            return p
    return None


def elsewhere() -> dict[str, str]:
    """``key -> the section it belongs in``, for "unknown key here; it belongs in ..." hints."""
    out = {k: section for section, keys in FRAME_SECTIONS.items() for k in keys}
    for p in PARTS.values():  # a key of several sections: the first registered (noise's kind)
        for k in p.defaults:
            prefixed = f"{p.name}.{k}" in p.condition_keys
            out.setdefault(k, p.name + (f" (in conditions and factorial: {p.name}.{k})" if prefixed else ""))
    out.update({k: "check" for p in PARTS.values() for k in p.tolerances})
    out.update({k: "the top level" for k in ("seed", "repeats", "conditions", "factorial", "name")})
    return out
