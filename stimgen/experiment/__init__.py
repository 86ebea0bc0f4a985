"""YAML experiment files -> validated plans -> reproducible, verified stimulus sets.

Contents
--------
load_experiment       read and validate a YAML file; every default filled in
validate_experiment   the same for a plain dict (e.g. the experiment stored in a manifest)
ExperimentError       ValueError carrying every ``FILE:LINE: key.path: message`` problem
expand_conditions     the list and/or factorial conditions as resolved parameter sets
generate_stimulus     stimulus ``i`` of an experiment, alone (float image or movie, its facts)
run_experiment        generate a whole set in parallel, atomically, with manifest and figures
verify_set            re-hash every file and re-measure every spectrum against the manifest
regenerate_stimulus   rebuild one stimulus from a manifest and compare its bytes
RunFailed             a run that could not complete (worker died, disk error); nothing written

Modules (one per stage)
-----------------------
keys         the frame of an experiment file: its sections other than the parts', defaults
errors       ExperimentError, RunFailed
parts        the Part protocol and the registry of stimulus parts (PARTS, register)
noise_part   the ``noise`` part: band-limited noise, checked by its spectrum
motion_part  the ``motion`` part: the noise as a movie, checked by its velocity
schema       line-aware validation (load_experiment, validate_experiment)
plan         conditions, factorial, seeds, shapes (expand_conditions)
draw         one stimulus from (plan, index): each part in turn (generate_stimulus)
display_out  the display encodings of output.formats: files, predicted and decoded checks
measure      spectral, orientation, slope and speed checks
execute      chunks of stimuli in this process, in local processes, or on Dask
manifest     per-condition summaries, the manifest, reading it back (read_manifest)
figures      the parts' figures and the contact sheet (matplotlib only through plotting)
run          run_experiment: validate, plan, execute, write the set atomically
verify       verify_set, regenerate_stimulus

Conventions
-----------
* Values are signed contrast (0 = mean luminance, display range [-1, 1]); PNG levels are
  ``round((x + 1) / 2 * (2^bits - 1))`` (see :func:`stimgen.contrast.quantize`).
* Motion experiments (a ``motion`` section) make ``(T, H, W)`` movies of drifting noise
  (:func:`stimgen.motion.drifting_noise`): ``.npy`` movies plus optional animated GIF
  previews; speeds in deg/s, directions counter-clockwise from rightwards (90 = upwards);
  each movie's speed is measured with optical flow (:func:`stimgen.motion.verify_motion`)
  and its first frame's spectrum against the design.
* Seeding: one ``SeedSequence(entropy)`` per set; stimulus ``i`` (0-based, in plan order:
  conditions in order, repeats within a condition) draws everything - the noise (or movie),
  then the dither of each PNG or GIF in the order of ``output.formats`` - from
  ``default_rng(SeedSequence(entropy, spawn_key=(i,)))``. So any stimulus regenerates alone,
  and the files do not depend on the number of workers or the scheduler.
* A set is written into a temporary sibling directory and renamed into place only when
  complete (:func:`stimgen.io.atomic_directory`): a failed or interrupted run leaves nothing.
* Frequencies in cycles/degree (``_cpd``), sizes in degrees (``_deg``) or pixels (``_px``).
  Every band states its level (``half_amplitude`` by default).
"""

from __future__ import annotations

# the built-in stimulus parts register themselves, in drawing order
from . import motion_part, noise_part  # noqa: F401  isort: skip
from . import target_part, aperture_part  # noqa: F401  isort: skip  (drawing order: the target, then the aperture)
from .draw import generate_stimulus
from .errors import ExperimentError, RunFailed
from .keys import (  # noqa: F401  (the frame's constants, importable from here)
    CLIPPING,
    DISPLAY_DEFAULTS,
    DITHERS,
    DTYPES,
    FORMATS,
    MANIFEST_VERSION,
    MAX_STIMULI,
    MOTION_FORMATS,
    OUTPUT_DEFAULTS,
    STILL_FORMATS,
    STIMULUS_DEFAULTS,
    VALUE_CONVENTION,
)
from .manifest import read_manifest
from .motion_part import MOTION_DEFAULTS, MOTION_PARAM_KEYS  # noqa: F401
from .motion_part import speed_text as _speed_text  # noqa: F401  (used by stimgen.cli)
from .noise_part import FAMILIES, KINDS, LEVELS, NOISE_DEFAULTS  # noqa: F401
from .parts import PARTS, BasePart, Drawing, FailsCheck, Measured, Part, register
from .plan import expand_conditions
from .run import run_experiment
from .schema import check_defaults, load_experiment, top_keys, validate_experiment
from .verify import VerifyReport, regenerate_stimulus, verify_set


def __getattr__(name: str):
    """The key lists that depend on the registered parts, computed when asked for."""
    from .parts import CONTRAST_KEYS
    from .plan import param_keys

    if name == "TOP_KEYS":
        return top_keys()
    if name == "CHECK_DEFAULTS":
        return check_defaults()
    if name == "PARAM_KEYS":
        return param_keys()
    if name == "CONDITION_KEYS":
        return ("label", "repeats", *param_keys())
    if name == "CONTRAST_KEYS":
        return CONTRAST_KEYS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PARTS",
    "BasePart",
    "Drawing",
    "FailsCheck",
    "ExperimentError",
    "Measured",
    "Part",
    "RunFailed",
    "VerifyReport",
    "check_defaults",
    "expand_conditions",
    "generate_stimulus",
    "load_experiment",
    "read_manifest",
    "regenerate_stimulus",
    "register",
    "run_experiment",
    "top_keys",
    "validate_experiment",
    "verify_set",
]
