"""Direct spectral synthesis of Gaussian noise: exactly white unit-variance statistics,
designed bands, independence of threads and chunking, and old records and sets that still
regenerate bit for bit with the spatial method."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy import fft, stats

from stimgen import experiment as ex
from stimgen import noise
from stimgen.cli import main
from stimgen.filters import Filter, _mirrored_rows
from stimgen.noise import (
    _draw_band,
    _hermitian_power,
    _image_seeds,
    _spectral_layout,
    bandpass_noise,
    filtered_noise,
    make_filter,
    noise_from_record,
)
from stimgen.spectrum import compare_to_design, measure_band

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class AllPass(Filter):
    """|H| = 1 everywhere, DC included: the output is the synthesized white noise itself."""

    family: ClassVar[str] = "all_pass"

    def transfer(self, f_cpp: Any) -> np.ndarray:
        return np.ones_like(np.asarray(f_cpp, dtype=float))


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# -- the statistics of white noise -------------------------------------------------------------
@pytest.fixture(scope="module")
def white_stack() -> np.ndarray:
    return filtered_noise((256, 256), AllPass(), n=64, rng=20261202)


def test_per_pixel_mean_zero_and_variance_one_within_standard_errors(white_stack):
    n, h, w = white_stack.shape
    x = white_stack.astype(np.float64)
    p = h * w
    z = x.mean(axis=0) * np.sqrt(n)  # each pixel's mean in standard errors: N(0, 1)
    assert abs(z.mean()) < 4 / np.sqrt(p)
    assert abs((z**2).mean() - 1) < 4 * np.sqrt(2 / p)
    assert np.abs(z).max() < 5.5
    var = x.var(axis=0, ddof=1)  # each pixel's variance over the images
    se = np.sqrt(2 / (n - 1))  # of one pixel's variance
    assert abs(var.mean() - 1) < 4 * se / np.sqrt(p)
    # no row or column (the DC and Nyquist lines included) is off
    assert np.abs(var.mean(axis=1) - 1).max() < 5 * se / np.sqrt(w)
    assert np.abs(var.mean(axis=0) - 1).max() < 5 * se / np.sqrt(h)


def test_pooled_periodogram_is_flat_and_dc_and_nyquist_carry_their_share(white_stack):
    n, h, w = white_stack.shape
    power = np.zeros((h, w))
    for img in white_stack:
        power += np.abs(np.fft.fft2(img.astype(np.float64))) ** 2
    power /= n * h * w  # the periodogram of unit white noise has mean 1 at every frequency
    fy = np.fft.fftfreq(h)[:, None] * h
    fx = np.fft.fftfreq(w)[None, :] * w
    r = np.hypot(fx, fy)  # cycles/image
    tested = 0
    for lo in range(4, int(r.max()) + 1, 8):  # annuli 8 cycles/image wide, from 4 cycles/image
        sel = (r >= lo) & (r < lo + 8)
        if sel.sum() < 2000:
            continue
        # 3 % against a standard error of about 1 / sqrt(n * count / 2) (conjugates are equal)
        assert abs(power[sel].mean() - 1) < 0.03, (lo, power[sel].mean())
        tested += 1
    assert tested >= 15
    # DC, the Nyquist row and the Nyquist column: real at the four self-conjugate points
    # (variance H W), complex elsewhere (real and imaginary parts H W / 2 each)
    real_points = power[[0, 0, h // 2, h // 2], [0, w // 2, 0, w // 2]]
    assert abs(real_points.mean() - 1) < 4 * np.sqrt(2 / (4 * n))
    for line in (power[h // 2, 1 : w // 2], power[1 : h // 2, w // 2], power[0, 1 : w // 2], power[1 : h // 2, 0]):
        assert abs(line.mean() - 1) < 4 / np.sqrt(n * line.size), line.mean()
    # the imaginary parts at the self-conjugate points are zero (the images are real) and
    # their real parts have the full variance: a halved variance there would give 0.5
    spec = np.fft.rfft2(white_stack[:, :, :].astype(np.float64))
    re = spec[:, [0, 0, h // 2, h // 2], [0, w // 2, 0, w // 2]].real / np.sqrt(h * w)
    assert abs(re.var() - 1) < 4 * np.sqrt(2 / re.size)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_values_are_standard_normal(seed):
    # a KS p-value is uniform on [0, 1] for exactly normal values: a 1e-3 threshold fails one
    # correct draw in 1000 (0.01 failed seed 1 of the draw's column-by-column order, p = 0.007)
    x = filtered_noise((256, 256), AllPass(), n=4, rng=seed).astype(np.float64).ravel()
    assert stats.kstest(x, "norm").pvalue > 1e-3
    # and the same for a non-square, odd size (no Nyquist row; a Nyquist column)
    y = filtered_noise((257, 200), AllPass(), n=4, rng=seed, dtype=np.float64).ravel()
    assert stats.kstest(y, "norm").pvalue > 1e-3


# -- designed bands -----------------------------------------------------------------------------
BAND_CASES = [
    ("dog", dict(band_cpd=(1, 5)), 35.8375),
    ("log_gaussian", dict(band_cpd=(1, 2)), 35.8375),
    ("butterworth", dict(band_cpd=(2, 6)), 50.0),
    ("ideal", dict(band_cpd=(3, 9)), 40.0),
]


@pytest.mark.parametrize("shape", [(512, 512), (511, 384), (385, 513)])
@pytest.mark.parametrize(("family", "band", "ppd"), BAND_CASES)
def test_measured_band_matches_the_design(family, band, ppd, shape, edge_se):
    imgs, rec = bandpass_noise(size_px=shape, ppd=ppd, family=family, n=32, rng=2024, **band)
    assert rec["synthesis"] == "spectral"
    np.testing.assert_allclose(imgs.std(axis=(1, 2), dtype=np.float64), 0.2, rtol=1e-6)
    np.testing.assert_allclose(imgs.mean(axis=(1, 2), dtype=np.float64), 0.0, atol=1e-7)
    m = measure_band(imgs, ppd=ppd)
    filt = make_filter(family, ppd=ppd, **band)
    c = compare_to_design(m, filt, ppd=ppd, rms_contrast=0.2)
    assert c["pass"], c
    for k, edge in zip(("low", "high"), c["design"]["band_cpd"], strict=True):  # 2 % plus 3 standard errors
        assert abs(c["rel_error"][k]) <= 0.02 + 3 * edge_se(m.spectrum, filt, ppd, edge), c["rel_error"]


@pytest.mark.parametrize(("family", "kw"), [
    ("lowpass", dict(cutoff_cpd=4.0)),
    ("highpass", dict(cutoff_cpd=4.0)),
    ("notch", dict(band_cpd=(2, 4))),
    ("log_gaussian", dict(band_cpd=(1, 2), orientation_deg=30)),
])
def test_other_families_pass_the_periodogram_test(family, kw):
    ppd = 32.0
    imgs, rec = bandpass_noise(size_px=(255, 320), ppd=ppd, family=family, n=8, rng=5, **kw)
    assert rec["synthesis"] == "spectral"
    filt = make_filter(family, ppd=ppd, **kw)
    c = compare_to_design(measure_band(imgs, ppd=ppd), filt, ppd=ppd, rms_contrast=0.2)
    assert c["test"]["p_value"] > 0.001, c["reason"]


def test_mean_and_contrast_are_set_from_the_spectrum():
    imgs, rec = bandpass_noise(size_px=(97, 130), ppd=30, band_cpd=(2, 6), family="log_gaussian",
                               rms_contrast=0.3, mean=-0.25, n=3, rng=4, dtype=np.float64)
    np.testing.assert_allclose(imgs.std(axis=(1, 2)), 0.3, rtol=1e-12)
    np.testing.assert_allclose(imgs.mean(axis=(1, 2)), -0.25, rtol=1e-12)
    assert rec["fraction_outside_range"] == np.count_nonzero(np.abs(imgs) > 1) / imgs.size


def test_unfiltered_power_is_the_transfer_squared():
    # filtered_noise keeps the scale: white noise of variance 1 times the transfer
    filt = make_filter("log_gaussian", ppd=32, band_cpd=(2, 4))
    imgs = filtered_noise((128, 128), filt, n=64, rng=9, dtype=np.float64)
    grid = filt.grid((128, 128), dtype=np.float64)
    expected = float(np.sum(grid[:, 1:-1] ** 2) * 2 + np.sum(grid[:, [0, -1]] ** 2)) / 128**2
    assert imgs.var() == pytest.approx(expected, rel=0.03)


# -- negligible transfer: not drawn ---------------------------------------------------------------
def test_narrow_low_band_draws_only_where_the_transfer_is_not_negligible():
    filt = make_filter("log_gaussian", ppd=60, band_cpd=(0.5, 1.0))
    lay = _spectral_layout(filt, 512, 512, "float32")
    assert lay.cols < 512 // 2 + 1 and len(lay.bands) < lay.n_bands  # a saving
    grid = filt.grid((512, 512))
    drawn = np.zeros(grid.shape, bool)
    for _, a, b in lay.bands:
        drawn[a:b, : lay.cols] = True
    assert grid[~drawn].max() <= grid.max() * 2.0**-24  # nothing left out above float32 resolution
    imgs, _ = bandpass_noise(size_px=512, ppd=60, band_cpd=(0.5, 1.0), family="log_gaussian", n=16, rng=3)
    c = compare_to_design(measure_band(imgs, ppd=60), filt, ppd=60, rms_contrast=0.2)
    assert c["test"]["p_value"] > 0.001, c["reason"]
    np.testing.assert_allclose(imgs.std(axis=(1, 2), dtype=np.float64), 0.2, rtol=1e-6)


# -- the same noise whatever the threads and chunks ---------------------------------------------------
def test_same_seed_same_noise_for_any_workers_and_chunking(monkeypatch):
    import stimgen.noise as noise

    kw = dict(size_px=(300, 260), ppd=30, band_cpd=(1, 4), family="log_gaussian", rng=11)
    single = {bandpass_noise(**kw, workers=wk)[0].tobytes() for wk in (1, 2, 3, None, -1)}
    assert len(single) == 1
    stacks = set()
    for chunk in (1, 3 * 300 * 260 * 4, 2**30):
        monkeypatch.setattr(noise, "_DEFAULT_CHUNK_BYTES", chunk)
        for wk in (1, 2, None, 8):  # 8 threads for 5 images: each image uses them all
            stacks.add(bandpass_noise(**kw, n=5, workers=wk)[0].tobytes())
            stacks.add(filtered_noise((300, 260), DOG, n=5, rng=11, workers=wk, chunk_bytes=chunk).tobytes())
    assert len(stacks) == 2  # one for bandpass_noise, one for filtered_noise
    # image i of a stack is the i-th image spawned from the seed: stacks share their prefix,
    # and the first image is the single image of that seed
    five = bandpass_noise(**kw, n=5)[0]
    three = bandpass_noise(**kw, n=3)[0]
    assert five[:3].tobytes() == three.tobytes()
    assert five[0].tobytes() == next(iter(single))


DOG = make_filter("dog", ppd=30, band_cpd=(1, 4))


def reference_images(filt: Filter, h: int, w: int, n: int, rng: int, dtype: Any, rms: float | None) -> np.ndarray:
    """The images of spectral synthesis the plain way: every band drawn into a zeroed half
    spectrum, ``ifft`` over the columns and ``irfft`` over the rows of the whole array (new
    arrays), then scaled."""
    dt = np.dtype(dtype)
    lay = _spectral_layout(filt, h, w, dt.name)
    grid = filt.grid((h, w), dtype=dt)
    out = []
    for seed in _image_seeds(np.random.default_rng(rng), n):
        spec = np.zeros((h, w // 2 + 1), dtype=np.complex64 if dt == np.float32 else np.complex128)
        seeds = seed.spawn(lay.n_bands)
        sums = [_draw_band(spec, grid, lay, band, seeds, dt, rms is not None) for band in lay.bands]
        if rms is None:
            gain = math.sqrt(h * w / 2.0)
        else:
            gain = rms * h * w / math.sqrt(_hermitian_power(spec, lay, math.fsum(sums)))
        img = fft.irfft(fft.ifft(spec, axis=0), n=w, axis=1)
        out.append(img * dt.type(gain))
    return np.stack(out)


SHAPES = [(2, 2), (3, 5), (5, 3), (4, 64), (64, 4), (31, 33), (130, 2), (2, 130), (300, 260), (257, 511), (512, 512)]


@pytest.mark.parametrize("shape", SHAPES)
def test_images_written_over_their_spectrum_equal_the_plain_transforms(shape, monkeypatch):
    """One image is written over its own half spectrum, row block by row block, in thread
    ranges: the same bytes as the plain transforms, for every thread count, in whatever
    order the threads take the ranges (here also last first, so that every range writes
    before the range above it has read its last rows), and with tiny blocks."""
    h, w = shape
    filt = make_filter("log_gaussian", ppd=8, band_cpd=(0.5, 2.0))
    ref = reference_images(filt, h, w, 1, 5, np.float32, None)[0]
    ref64 = reference_images(filt, h, w, 1, 5, np.float64, None)[0]
    order = {"in order": noise._threads.share}

    def last_first(workers, threads, fn, items):
        done = [fn(x) for x in reversed(items)]
        return done[::-1]

    order["last first"] = last_first
    for name, share in order.items():
        monkeypatch.setattr(noise._threads, "share", share)
        for block_bytes in (1, 2**17):
            monkeypatch.setattr(noise, "_ROW_BLOCK_BYTES", block_bytes)
            for workers in (1, 2, 3, 7):
                img = filtered_noise(shape, filt, rng=5, workers=workers)
                assert img.shape == shape and img.flags.c_contiguous, (name, workers)
                assert img.tobytes() == ref.tobytes(), (name, block_bytes, workers)
            assert filtered_noise(shape, filt, rng=5, workers=3, dtype=np.float64).tobytes() == ref64.tobytes()


def test_stacks_reuse_one_spectrum_per_thread_and_equal_the_plain_transforms():
    # a narrow low band: columns and bands not drawn, which the reused spectrum must zero again
    filt = make_filter("log_gaussian", ppd=60, band_cpd=(0.5, 1.0))
    lay = _spectral_layout(filt, 1024, 256, "float32")
    assert lay.cols < 256 // 2 + 1 and 1 < len(lay.bands) < lay.n_bands
    ref = reference_images(filt, 1024, 256, 5, 8, np.float32, 0.2)
    for workers in (1, 2, 4, 8):
        for chunk in (1, 2**30):
            imgs, _ = noise._filtered(1024, 256, filt, 5, "gaussian", np.random.default_rng(8), np.dtype(np.float32),
                                      workers, chunk, (0.2, 0.0), "spectral")  # fmt: skip
            assert imgs.tobytes() == ref.tobytes(), (workers, chunk)


def test_one_image_uses_at_most_workers_threads(monkeypatch):
    """The row ranges of one image (four per thread) are shared by ``workers`` threads, the
    calling one included: never one more."""
    import threading
    import time

    seen: set[int] = set()
    plain = fft.irfft

    def irfft(*args: Any, **kwargs: Any) -> np.ndarray:
        seen.add(threading.get_ident())
        time.sleep(0.002)  # every thread free to take a range gets one
        return plain(*args, **kwargs)

    monkeypatch.setattr(fft, "irfft", irfft)
    filt = make_filter("log_gaussian", ppd=8, band_cpd=(0.5, 2.0))
    for workers in (2, 3):
        seen.clear()
        filtered_noise((600, 600), filt, rng=1, workers=workers)
        assert 1 <= len(seen) <= workers, (workers, len(seen))


@pytest.mark.parametrize("shape", [(128, 128), (97, 130), (130, 97), (2, 2), (3, 4)])
def test_the_layout_is_the_largest_transfer_of_every_row_and_column(shape):
    """One pass of row blocks (over the distinct rows of a radial filter) finds the rows and
    columns the plain reductions over the whole grid find."""
    h, w = shape
    filters = [make_filter("log_gaussian", ppd=60, band_cpd=(0.5, 1.0)), make_filter("ideal", ppd=20, band_cpd=(1, 3)),
               make_filter("dog", ppd=30, band_cpd=(1, 5), orientation_deg=20), make_filter("lowpass", ppd=30, cutoff_cpd=2)]
    assert [_mirrored_rows(f) for f in filters] == [True, True, False, True]
    for filt in filters:
        for dtype in ("float32", "float64"):
            grid = filt.grid(shape, dtype=dtype)
            row_mag = np.abs(grid).max(axis=1)
            col_mag = np.abs(grid).max(axis=0)
            limit = float(row_mag.max()) * noise.NEGLIGIBLE_TRANSFER[dtype]
            lay = noise._SpectralLayout(filt, h, w, np.dtype(dtype))
            last = np.flatnonzero(col_mag > limit)
            assert lay.cols == (int(last[-1]) + 1 if last.size else 0)
            drawn = np.zeros(h, bool)
            for _, a, b in lay.bands:
                drawn[a:b] = True
            rows = lay.bands[0][2] - lay.bands[0][1] if lay.bands else h
            for a in range(0, h, rows):
                assert drawn[a : a + rows].all() == (row_mag[a : a + rows] > limit).any()


def test_synthesis_is_validated_and_other_kinds_keep_their_path():
    with pytest.raises(ValueError, match=r"synthesis must be one of 'spectral', 'spatial'; got 'fourier'"):
        bandpass_noise(size_px=64, ppd=30, band_cpd=(1.5, 6), synthesis="fourier")
    with pytest.raises(ValueError, match=r"synthesis.*'fourier'"):
        filtered_noise((64, 64), DOG, synthesis="fourier")
    for kind in ("uniform", "binary", "flat"):
        a, rec = bandpass_noise(size_px=64, ppd=30, band_cpd=(1.5, 6), kind=kind, rng=1)
        b, _ = bandpass_noise(size_px=64, ppd=30, band_cpd=(1.5, 6), kind=kind, rng=1, synthesis="spatial")
        assert rec["synthesis"] == "spatial" and a.tobytes() == b.tobytes()
    a, rec = bandpass_noise(size_px=64, ppd=30, family="white", rng=1)
    assert rec["synthesis"] == "spatial"
    a, rec = bandpass_noise(size_px=64, ppd=30, band_cpd=(1.5, 6), rng=1)
    b, rec_b = bandpass_noise(size_px=64, ppd=30, band_cpd=(1.5, 6), rng=1, synthesis="spatial")
    assert rec["synthesis"] == "spectral" and rec_b["synthesis"] == "spatial" and a.tobytes() != b.tobytes()


# -- records --------------------------------------------------------------------------------------
def test_records_made_before_spectral_synthesis_regenerate_bit_for_bit():
    """tests/data/old_noise_records.json: records and image hashes saved by the code before
    spectral synthesis (no ``synthesis`` in the record).

    float64 images are bit for bit the same only on CPUs with the same vector instructions
    (numpy's SIMD ``exp``/``log`` differ by an ulp between instruction sets, and so do the
    transfer grids): where the float64 hash differs, the image rounded to float32 must
    match (``sha256_float32``), which a change of method (spatial -> spectral) cannot."""
    old = json.loads((DATA / "old_noise_records.json").read_text())
    assert len(old) == 5
    for name, case in old.items():
        rec = case["record"]
        assert "synthesis" not in rec
        a = noise_from_record(rec)
        if sha(a) != case["sha256"] and a.dtype == np.float64:
            assert sha(a.astype(np.float32)) == case["sha256_float32"], name
        else:
            assert sha(a) == case["sha256"], name
        if rec["family"] != "white":  # the spectral method makes other numbers from that seed
            assert sha(noise_from_record({**rec, "synthesis": "spectral"})) != case["sha256"], name


def test_new_records_state_the_synthesis_and_regenerate():
    for synthesis in ("spectral", "spatial"):
        imgs, rec = bandpass_noise(size_px=(70, 90), ppd=30, band_cpd=(2, 6), family="butterworth", n=3,
                                   rng=np.random.SeedSequence(8, spawn_key=(2,)), synthesis=synthesis)
        rec = json.loads(json.dumps(rec))
        assert rec["synthesis"] == synthesis
        assert noise_from_record(rec).tobytes() == imgs.tobytes()
        assert noise_from_record(rec, workers=1).tobytes() == imgs.tobytes()


def test_cli_noise_records_the_synthesis(tmp_path, capsys):
    out = tmp_path / "n.npy"
    assert main(["noise", "--size-px", "64", "64", "--ppd", "30", "--band-cpd", "1.5", "6", "--seed", "3",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["synthesis"] == "spectral"
    assert noise_from_record(rec).tobytes() == np.load(out).tobytes()


# -- experiments ------------------------------------------------------------------------------------
def test_a_set_made_before_spectral_synthesis_verifies_and_regenerates(tmp_path, capsys):
    """tests/data/old_set_v2: a set written by the code before spectral synthesis
    (manifest version 2, no noise.synthesis): it verifies and every stimulus regenerates
    bit for bit (with the spatial method, which its manifest implies)."""
    root = tmp_path / "old"
    shutil.copytree(DATA / "old_set_v2", root)
    m = json.loads((root / "manifest.json").read_text())
    assert m["manifest_version"] == 2 and "synthesis" not in m["experiment"]["noise"]
    assert main(["verify", str(root)]) == 0
    capsys.readouterr()
    for i in range(m["n_stimuli"]):
        res = ex.regenerate_stimulus(root, i)
        assert res["match"] and res["on_disk_match"], res
    # the same experiment stating synthesis: spatial makes those bytes again
    y = (root / "experiment.yaml").read_text().replace("noise: {family: log_gaussian}",
                                                         "noise: {family: log_gaussian, synthesis: spatial}")
    assert "synthesis: spatial" in y
    (tmp_path / "spatial.yaml").write_text(y)
    new = ex.run_experiment(tmp_path / "spatial.yaml", tmp_path / "s", jobs=1, progress=False)
    assert new["manifest_version"] == ex.MANIFEST_VERSION == 3
    assert [f["sha256"] for e in new["stimuli"] for f in e["files"]] == \
        [f["sha256"] for e in m["stimuli"] for f in e["files"]]


def test_new_sets_state_spectral_synthesis_and_regenerate(tmp_path, capsys):
    y = (DATA / "old_set_v2" / "experiment.yaml").read_text()
    (tmp_path / "e.yaml").write_text(y)
    m = ex.run_experiment(tmp_path / "e.yaml", tmp_path / "s", jobs=1, progress=False)
    assert m["experiment"]["noise"]["synthesis"] == "spectral" and m["manifest_version"] == 3
    assert m["status"] == "passed"
    old = json.loads((DATA / "old_set_v2" / "manifest.json").read_text())
    npy = [[f["sha256"] for f in e["files"] if f["format"] == "npy"][0] for e in m["stimuli"]]
    old_npy = [[f["sha256"] for f in e["files"] if f["format"] == "npy"][0] for e in old["stimuli"]]
    assert npy[:2] != old_npy[:2] and npy[2:] == old_npy[2:]  # Gaussian changed; uniform did not
    assert main(["verify", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert all(ex.regenerate_stimulus(tmp_path / "s", i)["match"] for i in range(m["n_stimuli"]))


def test_synthesis_key_is_checked(tmp_path, capsys):
    y = (DATA / "old_set_v2" / "experiment.yaml").read_text().replace(
        "noise: {family: log_gaussian}", "noise: {family: log_gaussian, synthesis: fourier}")
    (tmp_path / "bad.yaml").write_text(y)
    assert main(["run", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "noise.synthesis: must be one of spectral, spatial" in err and "fourier" in err


def test_shipped_masks_drawn_spatially_are_the_bytes_of_sets_made_before(tmp_path, capsys):
    """The shipped masks with synthesis: spatial are the bytes the engine made before
    spectral synthesis (the hash tests/test_run_engine.py kept for manifest version 1)."""
    y = (ROOT / "experiments" / "masks_octave_bands.yaml").read_text()
    y = y.replace("noise: {family: log_gaussian, level: half_amplitude}",
                  "noise: {family: log_gaussian, level: half_amplitude, synthesis: spatial}")
    assert "synthesis: spatial" in y
    (tmp_path / "masks.yaml").write_text(y)
    assert main(["run", str(tmp_path / "masks.yaml"), "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    m = json.loads((tmp_path / "s/manifest.json").read_text())
    h = hashlib.sha256()
    for e in m["stimuli"]:
        for f in e["files"]:
            h.update(f["file"].encode())
            h.update(f["sha256"].encode())
    assert h.hexdigest() == "bd5d3914ef6fa0b8b8a6823816adf9edf8786b2eb5a16f915a2abfdeedd134a1"


def test_a_failing_image_raises_in_the_caller(monkeypatch):
    import stimgen.noise as noise

    calls = []
    original = noise._spectral_image

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("image 3 failed")
        return original(*args, **kwargs)

    monkeypatch.setattr(noise, "_spectral_image", failing)
    monkeypatch.setattr(noise, "_DEFAULT_CHUNK_BYTES", 1)
    with pytest.raises(ValueError, match="image 3 failed"):
        bandpass_noise(size_px=16, ppd=16, band_cpd=(1, 4), n=9, rng=0, workers=2)


@dataclass(frozen=True)
class OneRowGrid(Filter):
    """A filter that overrides ``grid`` itself: passes one row of the rfft grid only (a row
    in the lower half, whose mirror row is blocked), so its rows are not mirror images."""

    family: ClassVar[str] = "one_row"
    row: int = -3

    def transfer(self, f_cpp: Any) -> np.ndarray:
        return np.ones_like(np.asarray(f_cpp, dtype=float))

    def grid(self, shape, *, real=True, dtype=np.float32):
        g = np.zeros((shape[0], shape[1] // 2 + 1 if real else shape[1]), dtype=dtype)
        g[self.row, 1:-1] = 1  # not the Nyquist column, which mirrors within itself
        return g


def test_a_filter_overriding_grid_has_its_own_rows_drawn():
    """The layout reads every row of a grid that is not the hub's radial one: the power of
    the image is in the passed row (its mirror row holds nothing in the filter)."""
    h, w = 32, 24
    img = noise.filtered_noise((h, w), OneRowGrid(), rng=3)
    power = np.abs(np.fft.rfft2(img)) ** 2
    assert power.sum() > 0
    # a real image's spectrum is Hermitian: row H-3 (columns > 0) and its mirror row 3 of
    # the full spectrum; in the rfft half-plane the energy sits in row H-3
    assert power[h - 3, 1:-1].sum() > 0.99 * power.sum()
