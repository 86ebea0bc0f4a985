"""Findings of a last read of version 0.2's change, each with the test that failed before its fix."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.noise import (
    _spectral_layout,
    bandpass_noise,
    filtered_noise,
    make_filter,
    noise_from_record,
)


def whitened(img: np.ndarray, filt, mask: np.ndarray) -> np.ndarray:
    """The image's half-spectrum divided by the filter's transfer, where ``mask`` holds."""
    grid = filt.grid(img.shape, real=True, dtype=np.float64)
    return np.fft.rfft2(img.astype(np.float64))[mask] / grid[mask]


# -- spectral synthesis: one seed, one white spectrum, whatever the filter -----------------------
@pytest.mark.parametrize(("dtype", "family", "bands"), [
    ("float32", "log_gaussian", ((1, 2), (2, 4))),  # float32 log-Gaussian skirts fall below 2^-24
    ("float64", "ideal", ((1, 2), (1.5, 4))),  # an ideal band is 0 beyond its edge
])  # fmt: skip
def test_the_same_seed_draws_the_same_white_spectrum_through_filters_of_other_drawn_columns(dtype, family, bands):
    """Frozen noise is one draw through each condition's filter. Spectral synthesis draws
    only the leading columns where |H| is not negligible; the coefficients were drawn row by
    row, so a filter with fewer such columns got other numbers at the same frequency."""
    filts = [make_filter(family, ppd=16, band_cpd=b) for b in bands]
    cols = [_spectral_layout(f, 256, 256, dtype).cols for f in filts]
    assert cols[0] != cols[1]  # the case: layouts of another width
    imgs = [filtered_noise((256, 256), f, rng=np.random.SeedSequence(9, spawn_key=(7, 0)), dtype=dtype)
            for f in filts]  # fmt: skip
    grids = [np.abs(f.grid((256, 256), real=True, dtype=np.float64)) for f in filts]
    mask = (grids[0] > 0.01 * grids[0].max()) & (grids[1] > 0.01 * grids[1].max())
    assert mask.sum() > 500
    a, b = (whitened(x, f, mask) for x, f in zip(imgs, filts, strict=True))
    # the same complex normal coefficients (to float32 rounding): before, they were unrelated (|a - b| ~ |a|)
    assert np.max(np.abs(a - b)) <= 1e-4 * np.sqrt(np.mean(np.abs(a) ** 2))


FROZEN = """\
name: frozen
seed: 9
display: {ppd: 16}
stimulus: {size_px: 128, rms_contrast: 0.05}
noise: {family: log_gaussian, band_cpd: [1, 2], frozen: true}
conditions:
  - {label: low}
  - {label: high, band_cpd: [2, 4]}
output: {formats: [npy], figures: false}
"""


def test_frozen_noise_of_two_bands_is_one_white_draw(tmp_path):
    """The experiment's frozen noise (float32, spectral synthesis): both conditions' stimuli
    of a repeat are one complex white spectrum through their own filter."""
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(FROZEN))
    exp = ex.load_experiment(path)
    a, _ = ex.generate_stimulus(exp, 0, 9)
    b, _ = ex.generate_stimulus(exp, 1, 9)  # condition "high", repeat 0
    fa, fb = (make_filter("log_gaussian", ppd=16, band_cpd=band) for band in ((1, 2), (2, 4)))
    ga, gb = (np.abs(f.grid((128, 128), real=True, dtype=np.float64)) for f in (fa, fb))
    mask = (ga > 0.01 * ga.max()) & (gb > 0.01 * gb.max())
    wa, wb = whitened(a, fa, mask), whitened(b, fb, mask)
    ratio = wa / wb  # one real scale (the two contrast settings), the same at every frequency
    scale = np.median(ratio.real)
    assert np.max(np.abs(ratio - scale)) <= 1e-3 * abs(scale)


# -- a SeedSequence passed twice ------------------------------------------------------------------
def test_a_seed_sequence_gives_the_same_images_every_time_and_its_record_regenerates_them():
    """Spectral synthesis spawned the images' seeds from the caller's SeedSequence itself:
    the second call with it drew other images, and its record (entropy, spawn key) did not
    regenerate them."""
    ss = np.random.SeedSequence(5, spawn_key=(3,))
    a, rec_a = bandpass_noise(size_px=64, ppd=32, band_cpd=(2, 8), rng=ss)
    b, rec_b = bandpass_noise(size_px=64, ppd=32, band_cpd=(2, 8), rng=ss)
    assert rec_a["synthesis"] == "spectral" and rec_a["seed"] == rec_b["seed"]
    assert a.tobytes() == b.tobytes()
    assert noise_from_record(rec_b).tobytes() == b.tobytes()
    assert ss.n_children_spawned == 0  # the caller's sequence is left as it was
    filt = make_filter("log_gaussian", ppd=32, band_cpd=(2, 8))
    x = filtered_noise((64, 64), filt, rng=ss, n=3)
    assert x.tobytes() == filtered_noise((64, 64), filt, rng=ss, n=3).tobytes()
    g = np.random.default_rng(ss)  # a Generator still draws new images at every call
    assert filtered_noise((64, 64), filt, rng=g).tobytes() != filtered_noise((64, 64), filt, rng=g).tobytes()
