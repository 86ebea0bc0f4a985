"""Tests of stimgen.flow: dense Lucas-Kanade flow on synthetic ground truth.

Noise is made here with numpy's FFT (band-pass of period ~16 px), translated by exact
Fourier sub-pixel shifts; the rotation field uses a sum of plane waves evaluated exactly at
the rotated coordinates. Convention under test: moving(x + u, y + v) = reference(x, y).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimgen import cli
from stimgen.flow import (
    FlowResult,
    MovieFlow,
    auto_levels,
    lucas_kanade,
    movie_flow,
    to_deg_per_s,
)

N = 128
MARGIN = 16  # interior: mirrored borders and wrapped content stay out of the EPE


def bandpass_noise(n: int, period_px: float, seed: int) -> np.ndarray:
    """Periodic noise with a one-octave log-Gaussian band around 1/period, unit std."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = 1.0
    gain = np.exp(-(np.log2(f * period_px) ** 2) / (2 * (1 / 2.355) ** 2))
    gain[0, 0] = 0.0
    a = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * gain).real
    return a / a.std()


def fourier_shift(a: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Exact periodic translation: content moves by (+dx columns, +dy rows)."""
    ky = np.fft.fftfreq(a.shape[0])[:, None]
    kx = np.fft.fftfreq(a.shape[1])[None, :]
    return np.fft.ifft2(np.fft.fft2(a) * np.exp(-2j * np.pi * (kx * dx + ky * dy))).real


def interior(a: np.ndarray) -> np.ndarray:
    return a[MARGIN:-MARGIN, MARGIN:-MARGIN]


def epe(res: FlowResult, u_true, v_true) -> float:
    e = np.hypot(res.u - u_true, res.v - v_true)
    return float(np.mean(interior(e)))


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return bandpass_noise(N, 16.0, seed=7)


# -- accuracy on known motion ---------------------------------------------------------
@pytest.mark.parametrize(
    ("dx", "dy", "bound"),
    [(0.25, 0.1, 0.005), (1.0, -0.5, 0.005), (2.5, 1.5, 0.005), (5.0, 0.0, 0.05), (-3.3, 4.1, 0.05)],
)
def test_fourier_translations(noise, dx, dy, bound):
    res = lucas_kanade(noise, fourier_shift(noise, dx, dy))
    assert interior(res.reliable).all()
    assert epe(res, dx, dy) <= bound


@pytest.mark.parametrize("derivative", ["gaussian", "sobel"])
def test_sign_convention_with_integer_roll(noise, derivative):
    # content moves 2 px right and 1 px down: u = +2, v = +1 (x first, rows downwards)
    mov = np.roll(noise, (1, 2), axis=(0, 1))
    res = lucas_kanade(noise, mov, derivative=derivative)
    u, v = res.median()
    assert u == pytest.approx(2.0, abs=1e-3)
    assert v == pytest.approx(1.0, abs=1e-3)
    # moving(x + u, y + v) == reference(x, y) at an interior pixel
    assert mov[40 + 1, 50 + 2] == noise[40, 50]


def test_rotation_field():
    # f = sum of plane waves (periods 12-22 px), evaluated exactly on rotated coordinates
    rng = np.random.default_rng(3)
    k = 120
    freq = rng.uniform(1 / 22, 1 / 12, k)
    theta = rng.uniform(0, 2 * np.pi, k)
    phase = rng.uniform(0, 2 * np.pi, k)
    kx, ky = freq * np.cos(theta), freq * np.sin(theta)

    def f(x, y):
        arg = 2 * np.pi * (x[..., None] * kx + y[..., None] * ky) + phase
        return np.cos(arg).sum(axis=-1)

    yy, xx = np.mgrid[:N, :N].astype(float)
    c = (N - 1) / 2
    a = np.radians(3.0)
    cs, sn = np.cos(a), np.sin(a)
    ref = f(xx, yy)
    # moving(R(x - c) + c) = ref(x): sample ref's function at the inverse rotation
    mov = f(cs * (xx - c) + sn * (yy - c) + c, -sn * (xx - c) + cs * (yy - c) + c)
    u_true = cs * (xx - c) - sn * (yy - c) + c - xx
    v_true = sn * (xx - c) + cs * (yy - c) + c - yy
    res = lucas_kanade(ref, mov)
    assert np.abs(u_true).max() > 3  # a real field, not a translation
    assert interior(res.reliable).mean() > 0.99
    assert epe(res, u_true, v_true) <= 0.01


@settings(max_examples=8, deadline=None)
@given(
    dx=st.floats(-2.0, 2.0, allow_nan=False),
    dy=st.floats(-2.0, 2.0, allow_nan=False),
)
def test_random_subpixel_shifts(dx, dy):
    ref = bandpass_noise(64, 12.0, seed=11)
    res = lucas_kanade(ref, fourier_shift(ref, dx, dy))
    e = np.hypot(res.u - dx, res.v - dy)[12:-12, 12:-12]
    assert np.nanmean(e) <= 0.01


# -- exactness and invariances ----------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
def test_identical_frames_give_exactly_zero_flow(noise, dtype):
    img = noise if dtype != np.uint8 else np.clip(noise * 40 + 128, 0, 255)
    img = img.astype(dtype)
    res = lucas_kanade(img, img.copy())
    assert interior(res.reliable).all() and res.reliable_fraction > 0.99
    ok = res.reliable
    assert np.all(res.u[ok] == 0) and np.all(res.v[ok] == 0)
    known = np.isfinite(res.normal_u)
    assert np.all(res.normal_u[known] == 0) and np.all(res.normal_v[known] == 0)
    assert res.u.dtype == (np.float32 if dtype == np.float32 else np.float64)


def test_float32_and_float64_agree(noise):
    mov = fourier_shift(noise, 1.3, -0.7)
    r64 = lucas_kanade(noise, mov)
    r32 = lucas_kanade(noise.astype(np.float32), mov.astype(np.float32))
    assert r32.u.dtype == np.float32 and r64.u.dtype == np.float64
    assert np.array_equal(r32.reliable, r64.reliable)
    ok = r64.reliable
    assert np.max(np.abs(r32.u[ok] - r64.u[ok])) < 1e-3
    assert np.max(np.abs(r32.v[ok] - r64.v[ok])) < 1e-3


def test_contrast_and_offset_invariance(noise):
    mov = fourier_shift(noise, 0.8, 0.3)
    r1 = lucas_kanade(noise, mov)
    r2 = lucas_kanade(10 * noise + 5, 10 * mov + 5)
    assert np.array_equal(r1.reliable, r2.reliable)
    np.testing.assert_allclose(r2.u, r1.u, atol=1e-9)
    assert r2.threshold == pytest.approx(100 * r1.threshold)
    np.testing.assert_allclose(r2.min_eigenvalue, 100 * r1.min_eigenvalue, rtol=1e-9)


def test_eigenvalues_are_those_of_the_tensor(noise):
    res = lucas_kanade(noise, noise)
    assert np.all(res.min_eigenvalue >= 0)
    assert np.all(res.min_eigenvalue <= res.max_eigenvalue * (1 + 1e-12))
    # isotropic noise: the tensor is well conditioned everywhere
    assert np.median(res.min_eigenvalue / res.max_eigenvalue) > 0.3


# -- aperture problem -------------------------------------------------------------------
def test_grating_is_unreliable_and_gives_the_normal_flow():
    # oblique grating (period 16 px, orientation 30 deg) translated by (1.5, 0.5) px
    yy, xx = np.mgrid[:N, :N].astype(float)
    n = np.array([np.cos(np.radians(30)), np.sin(np.radians(30))])  # unit wave vector

    def grating(x, y):
        return np.sin(2 * np.pi * (n[0] * x + n[1] * y) / 16.0)

    d = np.array([1.5, 0.5])
    res = lucas_kanade(grating(xx, yy), grating(xx - d[0], yy - d[1]))
    assert not interior(res.reliable).any()
    assert interior(res.aperture).all()
    assert np.isnan(res.u).all() and np.isnan(res.v).all()
    assert np.isnan(res.median()).all()  # nothing to report
    assert res.reliable_fraction == 0.0
    normal = d @ n  # only the component along the wave vector is visible
    np.testing.assert_allclose(interior(res.normal_u), normal * n[0], atol=2e-3)
    np.testing.assert_allclose(interior(res.normal_v), normal * n[1], atol=2e-3)


def test_blank_frames_have_no_flow_at_all():
    res = lucas_kanade(np.zeros((32, 32)), np.zeros((32, 32)))
    assert not res.reliable.any() and not res.aperture.any()
    assert np.isnan(res.normal_u).all() and np.isnan(res.u).all()
    assert res.threshold == 0.0


def test_absolute_threshold(noise):
    res = lucas_kanade(noise, noise, min_eigenvalue=1e6)
    assert res.threshold == 1e6 and not res.reliable.any()
    res0 = lucas_kanade(noise, noise, min_eigenvalue=0)
    assert interior(res0.reliable).all()


def test_flow_pointing_outside_the_frame_is_unreliable(noise):
    res = lucas_kanade(noise, fourier_shift(noise, 5.0, 0.0))
    # content of the last 5 columns has left the moving frame
    assert not res.reliable[:, -5:].any()
    assert res.reliable[MARGIN:-MARGIN, MARGIN:-5].all()


# -- pyramid ------------------------------------------------------------------------------
def test_auto_levels_follows_the_pattern_scale(noise):
    assert auto_levels(noise) == 2  # period 16 px: one halving keeps it at 8 px
    assert auto_levels(bandpass_noise(N, 4.0, seed=1)) == 1
    assert auto_levels(bandpass_noise(256, 64.0, seed=1)) >= 4
    assert auto_levels(np.ones((64, 64))) == 1


def test_single_scale_fails_where_the_pyramid_succeeds(noise):
    mov = fourier_shift(noise, 5.0, 0.0)
    assert epe(lucas_kanade(noise, mov, levels=2), 5.0, 0.0) < 0.05
    assert epe(lucas_kanade(noise, mov, levels=1, iterations=1), 5.0, 0.0) > 0.5


# -- movies -------------------------------------------------------------------------------
def test_movie_flow_recovers_a_constant_drift():
    frame = bandpass_noise(96, 16.0, seed=5)
    movie = np.stack([fourier_shift(frame, 0.6 * t, -0.4 * t) for t in range(5)])
    m = movie_flow(movie.astype(np.float32))
    assert isinstance(m, MovieFlow)
    assert m.u == pytest.approx(0.6, abs=2e-3) and m.v == pytest.approx(-0.4, abs=2e-3)
    assert len(m.pairs) == 4 and m.reliable_fraction > 0.95
    # 0.6 px/frame at 60 Hz on 30 ppd = 1.2 deg/s
    ud, vd = m.to_deg_per_s(ppd=30, fps=60)
    assert ud == pytest.approx(1.2, abs=5e-3) and vd == pytest.approx(-0.8, abs=5e-3)
    s = m.summary(ppd=30, fps=60)
    assert s["speed_deg_per_s"] == pytest.approx(np.hypot(1.2, 0.8), abs=5e-3)
    # up on the screen is positive: rightwards and upwards = first quadrant
    assert s["direction_deg"] == pytest.approx(np.degrees(np.arctan2(0.8, 1.2)), abs=0.5)
    m2 = movie_flow(movie, max_pairs=2)
    assert m2.pairs.tolist() == [0, 3]


def test_to_deg_per_s():
    assert to_deg_per_s(2.0, -1.0, ppd=40, fps=80) == (4.0, -2.0)
    u, v = to_deg_per_s(np.array([1.0]), np.array([0.5]), ppd=10, fps=10)
    np.testing.assert_allclose([u[0], v[0]], [1.0, 0.5])


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"moving_image": np.zeros((32, 33))}, r"same shape, got \(32, 32\) and \(32, 33\)"),
        ({"reference_image": np.full((32, 32), np.nan)}, "reference_image contains NaN"),
        ({"moving_image": np.full((32, 32), np.inf)}, "moving_image contains NaN or infinite"),
        ({"reference_image": np.zeros((4, 4)), "moving_image": np.zeros((4, 4))},
         r"at least 8x8 px, got shape \(4, 4\)"),
        ({"reference_image": np.zeros((32, 32, 3))}, "reference_image must have 2 dimensions"),
        ({"sigma_window": 0}, "sigma_window must be finite and > 0, got 0"),
        ({"sigma_window": -1.5}, "sigma_window must be finite and > 0"),
        ({"sigma_derivative": 0.0}, "sigma_derivative must be finite and > 0"),
        ({"derivative": "scharr"}, "derivative must be one of 'gaussian', 'sobel'; got 'scharr'"),
        ({"levels": 0}, "levels must be an integer >= 1, got 0"),
        ({"levels": "many"}, "levels must be one of 'auto'"),
        ({"levels": 4}, r"levels=4 is too deep for shape \(32, 32\).*levels <= 3"),
        ({"iterations": 0}, "iterations must be an integer >= 1"),
        ({"min_eigenvalue": -1.0}, "min_eigenvalue must be finite and >= 0"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"reference_image": np.zeros((32, 32)), "moving_image": np.zeros((32, 32))}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        lucas_kanade(**args)


@pytest.mark.parametrize(
    ("movie", "kwargs", "match"),
    [
        (np.zeros((1, 32, 32)), {}, r"at least 2 frames, got shape \(1, 32, 32\)"),
        (np.zeros((32, 32)), {}, "movie must have 3 dimensions"),
        (np.zeros((3, 32, 32)), {"margin_px": 16}, "margin_px=16 leaves no pixels"),
        (np.zeros((3, 32, 32)), {"max_pairs": 0}, "max_pairs must be an integer >= 1"),
    ],
)
def test_movie_flow_bad_input(movie, kwargs, match):
    with pytest.raises(ValueError, match=match):
        movie_flow(movie, **kwargs)


def test_auto_levels_bad_input():
    with pytest.raises(ValueError, match="image contains NaN"):
        auto_levels(np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="sigma_window must be finite and > 0"):
        auto_levels(np.zeros((16, 16)), sigma_window=0)


def test_summary_needs_both_ppd_and_fps(noise):
    res = lucas_kanade(noise, noise)
    with pytest.raises(ValueError, match="needs both ppd and fps"):
        res.summary(ppd=30)


# -- CLI and plots --------------------------------------------------------------------
@pytest.fixture
def frames(tmp_path, noise):
    f0, f1 = tmp_path / "f0.npy", tmp_path / "f1.npy"
    np.save(f0, noise.astype(np.float32))
    np.save(f1, fourier_shift(noise, 1.0, -0.5).astype(np.float32))
    return str(f0), str(f1)


def test_cli_flow_json(frames, capsys):
    assert cli.main(["flow", *frames, "--json", "--ppd", "32", "--fps", "64"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["median_u_px_per_frame"] == pytest.approx(1.0, abs=2e-3)
    assert d["median_v_px_per_frame"] == pytest.approx(-0.5, abs=2e-3)
    assert d["median_u_deg_per_s"] == pytest.approx(2.0, abs=4e-3)
    assert d["median_v_deg_per_s"] == pytest.approx(-1.0, abs=4e-3)
    assert 0.9 < d["reliable_fraction"] <= 1.0


def test_cli_flow_text_png_and_plot(tmp_path, noise, capsys):
    from PIL import Image

    img = np.clip(noise * 40 + 128, 0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(np.roll(img, 2, axis=1)).convert("RGB").save(tmp_path / "b.png")
    plot = tmp_path / "flow.png"
    argv = ["flow", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--plot", str(plot)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "median u: +2.0000 px/frame" in out and "reliable:" in out
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("extra", "match"),
    [(["--fps", "60"], "deg/s needs both --fps and --ppd"), (["--sigma-window", "0"], "sigma_window")],
)
def test_cli_flow_errors(frames, capsys, extra, match):
    assert cli.main(["flow", *frames, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and err.startswith("stimgen flow: error:")


def test_cli_flow_shape_mismatch(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros((16, 16)))
    np.save(tmp_path / "b.npy", np.zeros((16, 17)))
    assert cli.main(["flow", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "same shape" in err


def test_plots_draw_arrows_where_content_moves(noise):
    from stimgen import plotting

    res = lucas_kanade(noise, np.roll(noise, 2, axis=0))  # content moves down
    ax = plotting.plot_flow_quiver(res, background=noise)
    q = ax.collections[0]
    inner = (np.abs(q.X - N / 2) < N / 2 - MARGIN) & (np.abs(q.Y - N / 2) < N / 2 - MARGIN)
    assert inner.sum() > 100
    assert np.allclose(q.U[inner], 0, atol=1e-2) and np.allclose(q.V[inner], 2, atol=1e-2)
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # rows downwards: arrows point down
    ax2 = plotting.plot_flow_colorwheel(res)
    rgb = ax2.images[0].get_array()
    assert rgb.shape == (N, N, 3)
    fig = plotting.plot_flow(res, reference_image=noise)
    assert len(fig.axes) >= 2
    plotting._pyplot().close("all")


def test_float32_keeps_accuracy_on_a_large_offset():
    base = bandpass_noise(128, 16.0, 3)
    ref = (1000.0 + 0.01 * base).astype(np.float32)
    mov = (1000.0 + 0.01 * fourier_shift(base, 0.7, -0.3)).astype(np.float32)
    res = lucas_kanade(ref, mov)
    assert epe(res, 0.7, -0.3) < 1e-3


def test_cli_levels_message(capsys):
    with pytest.raises(SystemExit):
        cli.main(["flow", "a.npy", "b.npy", "--levels", "x"])
    assert "--levels must be 'auto' or an integer >= 1, got 'x'" in capsys.readouterr().err
