"""Findings of a last read of version 0.2's change, each with the test that failed before its fix."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from stimgen import experiment as ex
from stimgen.noise import (
    _frozen_filtered_noise,
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


# -- frozen noise: one seed, one white spectrum, whatever the filter ------------------------------
@pytest.mark.parametrize(("dtype", "family", "bands"), [
    ("float32", "log_gaussian", ((1, 2), (2, 4))),  # float32 log-Gaussian skirts fall below 2^-24
    ("float64", "ideal", ((1, 2), (1.5, 4))),  # an ideal band is 0 beyond its edge
])  # fmt: skip
def test_frozen_noise_is_one_white_spectrum_through_filters_of_other_drawn_columns(dtype, family, bands):
    """Frozen noise is one draw through each condition's filter. Spectral synthesis draws
    only the leading columns where |H| is not negligible, row by row, so a filter with fewer
    such columns got other numbers at the same frequency; frozen noise draws whole rows."""
    filts = [make_filter(family, ppd=16, band_cpd=b) for b in bands]
    cols = [_spectral_layout(f, 256, 256, dtype).cols for f in filts]
    assert cols[0] != cols[1]  # the case: layouts of another width
    imgs = [_frozen_filtered_noise((256, 256), f, kind="gaussian", rng=np.random.SeedSequence(9, spawn_key=(7, 0)),
                                   dtype=dtype, synthesis="spectral") for f in filts]  # fmt: skip
    grids = [np.abs(f.grid((256, 256), real=True, dtype=np.float64)) for f in filts]
    mask = (grids[0] > 0.01 * grids[0].max()) & (grids[1] > 0.01 * grids[1].max())
    assert mask.sum() > 500
    a, b = (whitened(x, f, mask) for x, f in zip(imgs, filts, strict=True))
    # the same complex normal coefficients (to float32 rounding): unrelated otherwise (|a - b| ~ |a|)
    assert np.max(np.abs(a - b)) <= 1e-4 * np.sqrt(np.mean(np.abs(a) ** 2))
    # and the image is the one of a filter that needs every column (the same numbers, times H)
    same = filtered_noise((256, 256), filts[0], rng=np.random.SeedSequence(9, spawn_key=(7, 0)), dtype=dtype)
    assert _spectral_layout(filts[0], 256, 256, dtype, True).cols == 129
    assert not np.array_equal(same, imgs[0])  # unfrozen noise keeps its (faster) draw


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


# -- a target's record in the manifest --------------------------------------------------------------
TARGET_YAML = """\
name: gabor_in_noise
seed: 12
display: {ppd: 32}
stimulus: {size_deg: 2, rms_contrast: 0.1}
noise: {family: log_gaussian, peak_cpd: 4, octaves: 1}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.3, contrast: 0.1, orientation_deg: 30}
repeats: 1
output: {formats: [npy], figures: false}
"""


@pytest.mark.parametrize(("key", "value"), [("contrast", 0.2), ("orientation_deg", 60.0), ("sf_cpd", 3.0)])
def test_a_target_record_that_is_not_the_drawn_target_fails_verify(tmp_path, key, value):
    """Each entry's target_record (frequency, orientation, contrast, E, ...) is what a reader
    takes the stimulus to hold; verify re-derived E and N but never compared the record
    with the target regenerated, so an edited record verified clean."""
    import json

    (tmp_path / "exp.yaml").write_text(TARGET_YAML)
    root = tmp_path / "set"
    ex.run_experiment(tmp_path / "exp.yaml", root, jobs=1, progress=False)
    assert ex.verify_set(root).ok
    mpath = root / "manifest.json"
    m = json.loads(mpath.read_text())
    m["stimuli"][0]["target_record"][key] = value
    mpath.write_text(json.dumps(m))
    rep = ex.verify_set(root)
    assert any(f"target_record.{key}" in f for f in rep.failures), rep.failures


# -- verify draws a composed stimulus once ----------------------------------------------------------
DISPLAY_YAML = """\
name: masked_display
seed: 5
display: {ppd: 32, gamma: {gamma: 2.2, l_min: 0.3, l_max: 120.3}, mean_cd_m2: 60}
stimulus: {size_px: 96, rms_contrast: 0.1}
noise: {family: log_gaussian, band_cpd: [2, 4]}
target: {kind: gabor, sf_cpd: 4, sigma_deg: 0.4, contrast: 0.2}
aperture: {kind: raised_cosine, radius_deg: 1, ramp_deg: 0.3}
repeats: 2
output: {formats: [npy, mono++, linear8, m16], figures: false}
"""


def test_verify_regenerates_a_composed_stimulus_once_for_all_its_display_files(tmp_path, monkeypatch):
    """verify drew a composed stimulus again for each of its display files and once more to
    take it apart (4 draws per stimulus here); the components are the same, so once is enough."""
    import stimgen.experiment.draw as draw_mod

    (tmp_path / "exp.yaml").write_text(DISPLAY_YAML)
    root = tmp_path / "set"
    m = ex.run_experiment(tmp_path / "exp.yaml", root, jobs=1, progress=False, budget_check=False)
    calls = []
    real = draw_mod.draw

    def counted(plan, index, entropy):
        calls.append(index)
        return real(plan, index, entropy)

    monkeypatch.setattr(draw_mod, "draw", counted)
    rep = ex.verify_set(root)
    assert rep.ok, rep.failures
    assert sorted(calls) == list(range(m["n_stimuli"]))
