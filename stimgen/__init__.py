"""stimgen: band-limited noise stimuli for vision science, in cycles per degree.

The public API is re-exported here and imported lazily, so ``import stimgen`` stays fast
(no scipy.fft, scipy.sparse or matplotlib until a name that needs them is used).

Modules
-------
geometry     viewing geometry: pixels per degree, deg <-> px, cpd <-> cycles/pixel
filters      the hub: radial/orientation transfer functions, passbands, inverse design
noise        white, band-limited and 1/f^alpha noise
contrast     RMS/Michelson contrast, clipping, quantization with dithering
spectrum     radially averaged power spectra in cpd and band measurement
targets      Gabor patches and gratings in signed contrast, with records
apertures    windows in degrees (gaussian, raised cosine, disk, annulus) and compose
energy       target energy E and noise spectral density N (designed and measured)
experiment   YAML experiment files -> reproducible, verified stimulus sets
standardize  per-image, per-channel standardization in place
datastats    exact streaming per-channel dataset statistics
motion       drifting noise movies and their verification
flow         dense Lucas-Kanade optical flow
levin        Levin et al. (2004) weights, affinity, cost and colorization
display      display models, gamma fits, encoding for displays (8-bit to 16-bit) and decoding
plotting     all matplotlib code
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ViewingGeometry": "geometry",
    "Gaussian": "filters",
    "DoG": "filters",
    "Butterworth": "filters",
    "LogGaussian": "filters",
    "Ideal": "filters",
    "Orientation": "filters",
    "PowerLaw": "filters",
    "Passband": "filters",
    "apply_filter": "filters",
    "design_filter": "filters",
    "bandpass_noise": "noise",
    "white_noise": "noise",
    "power_law_noise": "noise",
    "noise_from_record": "noise",
    "rms_contrast": "contrast",
    "michelson_contrast": "contrast",
    "set_rms_contrast": "contrast",
    "clip_contrast": "contrast",
    "quantize": "contrast",
    "radial_spectrum": "spectrum",
    "measure_band": "spectrum",
    "compare_to_design": "spectrum",
    "gabor": "targets",
    "grating": "targets",
    "aperture": "apertures",
    "compose": "apertures",
    "contrast_energy": "energy",
    "noise_psd": "energy",
    "measure_psd": "energy",
    "load_experiment": "experiment",
    "run_experiment": "experiment",
    "standardize": "standardize",
    "RunningStats": "datastats",
    "dataset_stats": "datastats",
    "drifting_noise": "motion",
    "verify_motion": "motion",
    "select_pairs": "motion",
    "lucas_kanade": "flow",
    "levin_weights": "levin",
    "levin_affinity": "levin",
    "levin_cost": "levin",
    "colorize": "levin",
    "DisplayModel": "display",
    "fit_gamma": "display",
    "encode": "display",
    "decode": "display",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stimgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
