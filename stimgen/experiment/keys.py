"""The frame of an experiment file: its sections other than the stimulus parts, and their defaults.

The parts' own sections (``noise``, ``motion``, ...) and their keys are declared by the
parts themselves (:mod:`stimgen.experiment.parts`).
"""

from __future__ import annotations

from typing import Any

VALUE_CONVENTION = (
    "signed contrast: 0 = mean luminance, display range [-1, 1]; "
    "PNG level = round((x + 1) / 2 * (2^bits - 1)) (noisy-bit dither: floor(level + U[0, 1)))"
)
MANIFEST_VERSION = 3  # 3: noise.synthesis (spectral by default; absent: spatial)

#: Display encodings (:data:`stimgen.display.METHODS`): they need a display model
#: (``display.calibration`` or ``display.gamma``, with ``display.mean_cd_m2``). With a model,
#: ``png16`` is the linearized 16-bit display encoding; without one, today's 16-bit PNG.
DISPLAY_FORMATS = ("linear8", "png16", "bitstealing", "mono++", "m16")
FORMATS = ("npy", "png8", "png16", "gif", "linear8", "bitstealing", "mono++", "m16")
STILL_FORMATS = ("npy", "png8", "png16", "linear8", "bitstealing", "mono++", "m16")
PLAIN_STILL_FORMATS = ("npy", "png8", "png16")  # without a display model
MOTION_FORMATS = ("npy", "gif")
DITHERS = ("none", "noisy-bit")
DTYPES = ("float32", "float64")
CLIPPING = ("clip", "error")

#: Top-level keys of the frame, before and after the parts' sections (in messages' order).
FRAME_HEAD = ("name", "description", "seed", "display", "stimulus")
FRAME_TAIL = ("conditions", "factorial", "repeats", "output", "check")
FRAME_KEYS = (*FRAME_HEAD, *FRAME_TAIL)

DISPLAY_DEFAULTS: dict[str, Any] = {
    "ppd": None,
    "distance_cm": None,
    "screen_width_cm": None,
    "screen_width_px": None,
    "screen_height_px": None,
    "calibration": None,
    "gamma": None,
    "mean_cd_m2": None,
    "model": None,
}
#: Keys of ``display.gamma`` (those of :meth:`stimgen.display.DisplayModel.from_gamma`).
DISPLAY_GAMMA_KEYS = ("gamma", "l_min", "l_max", "channel_weights")
STIMULUS_DEFAULTS: dict[str, Any] = {
    "size_deg": None,
    "size_px": None,
    "rms_contrast": 0.2,
    "mean": 0.0,
    "clipping": "clip",
    "max_clipped_fraction": 0.001,
}
OUTPUT_DEFAULTS: dict[str, Any] = {
    "formats": ["npy", "png8"],
    "dither": "none",
    "gamma": None,
    "dtype": "float32",
    "figures": True,
    "examples_per_condition": 4,
}
FRAME_SECTIONS: dict[str, tuple[str, ...]] = {
    "display": tuple(DISPLAY_DEFAULTS),
    "stimulus": tuple(STIMULUS_DEFAULTS),
    "output": tuple(OUTPUT_DEFAULTS),
}
_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"

#: Most stimuli one set may hold (the manifest keeps one entry per stimulus in memory).
MAX_STIMULI = 10_000_000
