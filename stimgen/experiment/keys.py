"""The keys of an experiment file, their defaults and allowed values."""

from __future__ import annotations

from typing import Any

VALUE_CONVENTION = (
    "signed contrast: 0 = mean luminance, display range [-1, 1]; "
    "PNG level = round((x + 1) / 2 * (2^bits - 1)) (noisy-bit dither: floor(level + U[0, 1)))"
)


MANIFEST_VERSION = 2


FAMILIES = ("dog", "log_gaussian", "butterworth", "ideal", "power_law", "white")


KINDS = ("gaussian", "uniform", "binary", "flat")


LEVELS = ("half_amplitude", "half_power")


FORMATS = ("npy", "png8", "png16", "gif")


STILL_FORMATS = ("npy", "png8", "png16")


MOTION_FORMATS = ("npy", "gif")


DITHERS = ("none", "noisy-bit")


DTYPES = ("float32", "float64")


CLIPPING = ("clip", "error")


TOP_KEYS = (
    "name", "description", "seed", "display", "stimulus", "noise",
    "conditions", "factorial", "repeats", "motion", "output", "check",
)  # fmt: skip


DISPLAY_DEFAULTS: dict[str, Any] = {
    "ppd": None,
    "distance_cm": None,
    "screen_width_cm": None,
    "screen_width_px": None,
    "screen_height_px": None,
}


STIMULUS_DEFAULTS: dict[str, Any] = {
    "size_deg": None,
    "size_px": None,
    "rms_contrast": 0.2,
    "mean": 0.0,
    "clipping": "clip",
    "max_clipped_fraction": 0.001,
}


NOISE_DEFAULTS: dict[str, Any] = {
    "family": None,
    "kind": "gaussian",
    "level": "half_amplitude",
    "band_cpd": None,
    "peak_cpd": None,
    "octaves": None,
    "sigma_center_deg": None,
    "sigma_surround_deg": None,
    "order": 4,
    "orientation_deg": None,
    "orientation_bandwidth_deg": 30.0,
    "alpha": 1.0,
}


OUTPUT_DEFAULTS: dict[str, Any] = {
    "formats": ["npy", "png8"],
    "dither": "none",
    "gamma": None,
    "dtype": "float32",
    "figures": True,
    "examples_per_condition": 4,
}


MOTION_DEFAULTS: dict[str, Any] = {
    "speed_deg_s": None,
    "direction_deg": 0.0,
    "frame_rate_hz": None,
    "duration_s": None,
    "n_frames": None,
    "refresh_frames": None,
    "allow_aliasing": False,
}


CHECK_DEFAULTS: dict[str, Any] = {
    "edge_tolerance": None,
    "peak_tolerance": None,
    "alpha_tolerance": None,
    "orientation_tolerance_deg": 5.0,
    "speed_tolerance": 0.05,
    "speed_atol_px_per_frame": 0.01,
    "min_reliable_fraction": 0.5,
}


CONTRAST_KEYS = ("rms_contrast", "mean")


MOTION_PARAM_KEYS = ("speed_deg_s", "direction_deg", "refresh_frames")  # may vary by condition


PARAM_KEYS = (*NOISE_DEFAULTS, *CONTRAST_KEYS, *MOTION_PARAM_KEYS)  # what a condition may vary


CONDITION_KEYS = ("label", "repeats", *PARAM_KEYS)


# band groups: a condition that gives keys of one group replaces the base's band entirely
_BAND_GROUP = {
    "band_cpd": "band",
    "peak_cpd": "peak",
    "octaves": "peak",
    "sigma_center_deg": "sigmas",
    "sigma_surround_deg": "sigmas",
}


_DESIGNABLE = ("dog", "log_gaussian", "butterworth", "ideal")


_ELSEWHERE = {
    **{k: "display" for k in DISPLAY_DEFAULTS},
    **{k: "stimulus" for k in STIMULUS_DEFAULTS},
    **{k: "noise" for k in NOISE_DEFAULTS},
    **{k: "output" for k in OUTPUT_DEFAULTS},
    **{k: "check" for k in CHECK_DEFAULTS},
    **{k: "motion" for k in MOTION_DEFAULTS},
    **{k: "the top level" for k in ("seed", "repeats", "conditions", "factorial", "name")},
}


_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"


#: Most stimuli one set may hold (the manifest keeps one entry per stimulus in memory).
MAX_STIMULI = 10_000_000


#: parameters whose null is a value ("none": no band of this kind, no orientation, ...)
_OPTIONAL = ("band_cpd", "peak_cpd", "octaves", "sigma_center_deg", "sigma_surround_deg", "orientation_deg",
             "refresh_frames", "speed_deg_s")
