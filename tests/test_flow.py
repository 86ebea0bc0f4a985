"""Tests of stimgen.flow: dense Lucas-Kanade flow on synthetic ground truth.

Noise is made here with numpy's FFT (band-pass of period ~16 px), translated by exact
Fourier sub-pixel shifts; the rotation field uses a sum of plane waves evaluated exactly at
the rotated coordinates. Convention under test: moving(x + u, y + v) = reference(x, y).
"""

from __future__ import annotations

import functools
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
    one_step = lucas_kanade(noise, mov, levels=1, iterations=1, consistency=False)
    assert epe(one_step, 5.0, 0.0) > 0.5
    # the consistency check knows: one linearized step that moved the estimate by
    # several px has not converged, so none of it is reliable
    checked = lucas_kanade(noise, mov, levels=1, iterations=1)
    assert not checked.reliable.any()
    assert np.median(interior(checked.last_update_px)) > 0.5


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
        # upper bounds (the cost grows with them)
        ({"sigma_window": 1e6}, r"sigma_window must be in \(0, 16\] px .*shape \(32, 32\).*got 1e\+06"),
        ({"sigma_window": 17}, r"sigma_window must be in \(0, 16\] px"),
        ({"sigma_derivative": 1e3}, r"sigma_derivative must be in \(0, 4\] px .*got 1000"),
        ({"iterations": 1_000_000}, r"iterations must be an integer in \[1, 100\], got 1000000"),
        ({"iterations": 2.5}, "iterations must be an integer >= 1, got 2.5"),
        ({"levels": 10**9}, r"levels=1000000000 is too deep .*levels <= 3"),
        ({"normalize": "local"}, "normalize must be one of 'global'; got 'local'"),
        ({"consistency": "yes"}, "consistency must be True or False, got 'yes'"),
        ({"consistency_px": 0}, "consistency_px must be finite and > 0, got 0"),
        ({"consistency_px": float("nan")}, "consistency_px must be finite and > 0, got nan"),
        ({"workers": 0}, "workers must be a non-zero integer"),
        ({"workers": 1.5}, "workers must be a non-zero integer"),
        # values and types
        ({"reference_image": np.full((32, 32), 1e300) * np.eye(32)[0]},
         (r"reference_image has values from 0 to 1e\+300: a range of 1e\+300; flow accepts "
          r"a range \(max - min\) <= 1.34e\+150")),
        ({"reference_image": np.eye(32, dtype=np.float32) * np.float32(1e20),
          "moving_image": np.zeros((32, 32), np.float32)},
         r"range \(max - min\) <= 1.84e\+15"),
        ({"moving_image": np.zeros((32, 32), complex)}, "moving_image must be a real numeric array, got dtype complex128"),
        ({"reference_image": np.zeros(32)}, r"reference_image must have 2 dimensions, got shape \(32,\)"),
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


# -- natural images: brightness changes and what "reliable" means (issue 10, items 3-4) --
@functools.lru_cache(maxsize=1)
def photo() -> np.ndarray:
    """A real photograph shipped with matplotlib (600x512 px gray, values in [0, 1])."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("L"), dtype=float) / 255.0


def pink_noise(n: int, rng) -> np.ndarray:
    """Noise with a 1/f amplitude spectrum (natural-image statistics), unit std."""
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = np.inf
    a = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) / f).real
    return (a - a.mean()) / a.std()


@functools.lru_cache(maxsize=8)
def leaves(n: int, seed: int) -> np.ndarray:
    """:func:`dead_leaves` of side ``n`` from ``default_rng(seed)``, computed once."""
    out = dead_leaves(n, np.random.default_rng(seed))
    out.flags.writeable = False
    return out


def dead_leaves(n: int, rng, disks: int = 250) -> np.ndarray:
    """Occluding disks of random gray levels, sizes (power law) and 1/f texture on a 1/f
    background: natural-image-like spectra, edges and occlusions."""
    from scipy import ndimage as ndi

    img = 0.5 + 0.12 * pink_noise(n, rng)
    tex = pink_noise(n, rng)
    yy, xx = np.mgrid[:n, :n]
    for _ in range(disks):
        r = 4 + 60 * rng.random() ** 3
        cx, cy = rng.uniform(0, n, 2)
        m = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[m] = rng.uniform(0.1, 0.9) + 0.06 * tex[m] * rng.uniform(0.3, 1.5)
    return ndi.gaussian_filter(img, 0.7)


def occlusion_scene(background: np.ndarray, n: int, seed: int, bg_shift, amp, obj_shift,
                    quantize: bool):
    """A background warped by a smooth non-rigid field plus a textured disk that moves
    rigidly in front of it. Returns reference, moving, true (u, v) and the mask of
    reference pixels whose true position in the moving frame lies inside it.

    ``background`` is sampled (cubic spline, exact at integer points) from offset 60 px;
    moving(y) = background(y - w(y)) with w = shift + sinusoids of amplitude ``amp`` px
    (periods ~n), so the true flow of reference pixel x is the y solving y = x + w(y).
    """
    from scipy import ndimage as ndi

    pad, o = 100, 60.0
    bgc = ndi.spline_filter(background, 3, mode="mirror")
    obj = leaves(n + 2 * pad, seed)
    objc = ndi.spline_filter(obj, 3)
    yy, xx = np.mgrid[:n, :n].astype(float)
    ph = np.random.default_rng(seed + 1).uniform(0, 2 * np.pi, 4)

    def w(x, y):
        wx = bg_shift[0] + amp * np.sin(2 * np.pi * y / (1.3 * n) + ph[0]) \
            + 0.5 * amp * np.cos(2 * np.pi * x / (1.1 * n) + ph[1])
        wy = bg_shift[1] + amp * np.cos(2 * np.pi * x / (1.2 * n) + ph[2]) \
            + 0.5 * amp * np.sin(2 * np.pi * y / (0.9 * n) + ph[3])
        return wx, wy

    def sample(c, rows, cols, mode="mirror"):
        return ndi.map_coordinates(c, [rows, cols], order=3, prefilter=False, mode=mode)

    wx, wy = w(xx, yy)
    ref_bg = sample(bgc, yy + o, xx + o)
    mov_bg = sample(bgc, yy - wy + o, xx - wx + o)
    gx, gy = xx.copy(), yy.copy()
    for _ in range(60):  # contraction: |grad w| <= 2 pi amp / (0.9 n) < 0.2
        a, b = w(gx, gy)
        gx, gy = xx + a, yy + b
    r = n / 6
    cx, cy = 0.4 * n, 0.55 * n
    dx, dy = obj_shift
    in_ref = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    in_mov = (xx - cx - dx) ** 2 + (yy - cy - dy) ** 2 < r * r
    ref = np.where(in_ref, obj[pad:-pad, pad:-pad], ref_bg)
    mov = np.where(in_mov, sample(objc, yy - dy + pad, xx - dx + pad, "nearest"), mov_bg)
    if quantize:  # 8-bit frames, as from a camera
        ref, mov = (np.clip(np.round(a * 255), 0, 255).astype(np.uint8) for a in (ref, mov))
    u_true = np.where(in_ref, dx, gx - xx)
    v_true = np.where(in_ref, dy, gy - yy)
    has_truth = (xx + u_true >= 0) & (xx + u_true <= n - 1) & (yy + v_true >= 0) \
        & (yy + v_true <= n - 1)
    return ref, mov, u_true, v_true, has_truth


def reliable_accuracy(res: FlowResult, u_true, v_true, has_truth) -> tuple[float, float]:
    """(coverage, share within 1 px): reliable pixels among those with ground truth, and
    the share of those reliable pixels whose flow is within 1 px of the truth."""
    ok = res.reliable & has_truth
    err = np.hypot(res.u - u_true, res.v - v_true)[ok]
    within = float(np.mean(err <= 1.0)) if err.size else 0.0
    return float(ok.sum() / has_truth.sum()), within


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return photo()[100:356, 128:384]


@pytest.mark.parametrize("image", ["photo", "dead_leaves"])
@pytest.mark.parametrize(("gain", "offset"), [(1.1, 0.0), (0.9, 0.05), (1.0, 0.1)])
def test_global_brightness_change_creates_no_flow(face, image, gain, offset):
    ref = face if image == "photo" else leaves(256, 2)
    dx, dy = 0.4, -0.3
    mov = gain * fourier_shift(ref, dx, dy) + offset
    res = lucas_kanade(ref, mov)
    err = interior(np.hypot(res.u - dx, res.v - dy))
    assert interior(res.reliable).mean() > 0.9
    assert np.nanmedian(err) <= 0.01
    assert res.brightness_gain == pytest.approx(gain, rel=0.01)
    # no motion at all: no flow
    still = lucas_kanade(ref, gain * ref + offset)
    assert np.nanmax(np.hypot(still.u, still.v)) < 1e-6 and still.reliable_fraction > 0.9
    # the raw brightness-constancy model is still available and shows the artefact
    raw = lucas_kanade(ref, gain * ref + offset, normalize=None, consistency=False)
    assert np.nanmedian(np.hypot(raw.u, raw.v)) > 0.05
    assert raw.brightness_gain == 1.0 and raw.normalize is None


def test_flicker_does_not_bias_movie_flow():
    frame = bandpass_noise(96, 16.0, seed=5)
    gains = [1.0, 1.1, 0.92, 1.05, 0.97]
    movie = np.stack([g * fourier_shift(frame, 0.6 * t, -0.4 * t) + 0.1 * (t % 2)
                      for t, g in enumerate(gains)])
    m = movie_flow(movie)
    assert m.u == pytest.approx(0.6, abs=2e-3) and m.v == pytest.approx(-0.4, abs=2e-3)


def test_default_threshold_keeps_accurate_pixels_of_a_photo(face):
    # a pure sub-pixel shift of a real photograph: every interior pixel is accurate, so
    # a useful reliability mask keeps (almost) all of them
    dx, dy = 0.4, -0.3
    res = lucas_kanade(face, fourier_shift(face, dx, dy))
    err = interior(np.hypot(res.u - dx, res.v - dy))
    assert interior(res.reliable).mean() >= 0.95
    assert np.nanpercentile(err, 95) <= 0.01


# scenes: (background, background shift px, non-rigid amplitude px, object shift px);
# true displacements span 3-61 px, with an object occluding the background
SCENES = [
    ("dead_leaves", (5, -3), 3, (-8, 6)),
    ("dead_leaves", (35, 20), 10, (-40, -25)),
    ("dead_leaves", (-50, 10), 8, (20, -30)),
    ("photo", (5, -3), 3, (-8, 6)),
    ("photo", (20, -8), 6, (-15, 20)),
    ("photo", (35, 20), 10, (-40, -25)),
]


@pytest.mark.parametrize(("background", "bg_shift", "amp", "obj_shift"), SCENES)
def test_reliable_means_accurate_on_scenes_with_occlusions(background, bg_shift, amp,
                                                           obj_shift):
    n = 384
    bg = photo() if background == "photo" else leaves(n + 300, 9)
    ref, mov, ut, vt, truth = occlusion_scene(bg, n, 1, bg_shift, amp, obj_shift,
                                              quantize=background == "photo")
    assert np.hypot(ut, vt)[truth].max() > 7  # large displacements, not a sub-pixel test
    res = lucas_kanade(ref, mov)
    coverage, within = reliable_accuracy(res, ut, vt, truth)
    assert coverage >= 0.30
    assert within >= 0.80
    # reliable pixels are forward-backward consistent and converged
    assert res.consistency_px == 0.5
    assert np.all(res.fb_error_px[res.reliable] <= 0.5)
    assert np.all(res.last_update_px[res.reliable] <= 0.5)
    # conditioning alone is not enough (the old meaning of "reliable")
    bare = lucas_kanade(ref, mov, consistency=False)
    assert bare.fb_error_px is None and bare.consistency_px is None
    assert reliable_accuracy(bare, ut, vt, truth)[1] < within


def test_without_consistency_reliable_is_conditioning_and_frame_only(noise):
    mov = fourier_shift(noise, 3.0, 1.0)
    res = lucas_kanade(noise, mov, consistency=False)
    yy, xx = np.indices(noise.shape)
    full = (res.min_eigenvalue >= res.threshold) & (res.min_eigenvalue > 0)
    # the flow is NaN where unreliable: recompute "inside" from the checked result
    chk = lucas_kanade(noise, mov)
    assert np.array_equal(chk.reliable, res.reliable & (chk.fb_error_px <= 0.5)
                          & (chk.last_update_px <= 0.5))
    assert np.all(full[res.reliable])


def test_smallest_frames_work_with_the_default_options():
    ref = bandpass_noise(8, 4.0, seed=3)
    res = lucas_kanade(ref, ref)
    assert res.sigma_window == 4.0 and res.levels == 1
    assert np.all(res.u[res.reliable] == 0)


def test_huge_but_finite_values_give_the_same_flow(noise):
    mov = fourier_shift(noise, 1.3, -0.7)
    r1 = lucas_kanade(noise, mov)
    r2 = lucas_kanade(1e140 * noise, 1e140 * mov)
    np.testing.assert_allclose(r2.u, r1.u, atol=1e-9)
    assert np.array_equal(r1.reliable, r2.reliable)
    assert np.isfinite(r2.min_eigenvalue).all() and r2.threshold > 0
    r3 = lucas_kanade(1e-140 * noise, 1e-140 * mov)
    np.testing.assert_allclose(r3.u, r1.u, atol=1e-9)


def test_cli_flow_brightness_and_consistency_options(tmp_path, noise, capsys):
    f0, f1 = tmp_path / "f0.npy", tmp_path / "f1.npy"
    np.save(f0, noise)
    np.save(f1, 1.2 * fourier_shift(noise, 1.0, -0.5) + 3.0)
    assert cli.main(["flow", str(f0), str(f1), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["median_u_px_per_frame"] == pytest.approx(1.0, abs=2e-3)
    assert d["brightness_gain"] == pytest.approx(1.2, rel=1e-3)
    assert d["consistency_px"] == 0.5 and d["normalize"] == "global"
    argv = ["flow", str(f0), str(f1), "--json", "--normalize", "none", "--no-consistency"]
    assert cli.main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["normalize"] is None and d["consistency_px"] is None
    assert cli.main(["flow", str(f0), str(f1)]) == 0
    out = capsys.readouterr().out
    assert "forward-backward consistent within 0.5 px" in out
    assert "brightness: moving = 1.2 x reference" in out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--sigma-window", "1e6"], r"sigma_window must be in \(0, 64\] px"),
        (["--iterations", "1000000"], r"iterations must be an integer in \[1, 100\], got 1000000"),
        (["--consistency-px", "-1"], "consistency_px must be finite and > 0, got -1"),
    ],
)
def test_cli_flow_bounds(frames, capsys, extra, match):
    import re

    assert cli.main(["flow", *frames, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.full((32, 32), 1e300) * np.eye(32), "range of 1e"),
        (np.zeros((32, 32), complex), "must be a real numeric array"),
    ],
)
def test_cli_flow_refuses_huge_and_complex_frames(tmp_path, capsys, array, match):
    np.save(tmp_path / "a.npy", array)
    np.save(tmp_path / "b.npy", np.zeros((32, 32)))
    assert cli.main(["flow", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


# -- speed work (issue 15 item 4): the fast paths compute the same numbers ---------------
@pytest.mark.parametrize(("dx", "dy"), [(2.0, -1.0), (-3.0, 0.0), (2.2, -1.4), (0.3, 0.45)])
def test_known_shifts_of_band_limited_noise_to_a_thousandth_of_a_pixel(dx, dy):
    # integer and sub-pixel exact shifts of 256x256 band-pass noise, float32 frames
    img = bandpass_noise(256, 16.0, seed=21)
    ref = (0.2 * img).astype(np.float32)
    mov = (0.2 * fourier_shift(img, dx, dy)).astype(np.float32)
    res = lucas_kanade(ref, mov)
    err = np.hypot(res.u - dx, res.v - dy)[24:-24, 24:-24]
    assert np.mean(np.isfinite(err)) > 0.99
    assert np.nanmedian(err) < 1e-3
    assert np.nanpercentile(err, 99) < 5e-3


@pytest.mark.parametrize("order", [3, 1])
@pytest.mark.parametrize(
    ("du", "dv", "spread"),
    [(0.3, 0.2, 0.3), (2.2, -1.4, 0.05), (-0.5, 0.7, 0.6), (7.0, 3.0, 2.0), (0.0, 0.0, 0.0),
     (40.0, -2.0, 1.0)],
)
def test_slice_sampler_equals_map_coordinates(order, du, dv, spread):
    from scipy import ndimage as ndi

    from stimgen.flow import _Sampler

    rng = np.random.default_rng(4)
    img = bandpass_noise(64, 8.0, seed=2)[:, :50].astype(np.float32)
    yy, xx = np.indices(img.shape, dtype=np.float32)
    u = (du + spread * rng.standard_normal(img.shape)).astype(np.float32)
    v = (dv + spread * rng.standard_normal(img.shape)).astype(np.float32)
    s = _Sampler(img, order)
    mode = "mirror" if order == 3 else "nearest"
    want = ndi.map_coordinates(s.coeffs, [yy + v, xx + u], order=order, prefilter=False,
                               mode=mode)
    if order == 3:  # the coefficients are scipy's cubic B-spline prefilter (mirror)
        np.testing.assert_allclose(s.coeffs, ndi.spline_filter(img, 3, mode="mirror"),
                                   atol=1e-5)
    got = s(u, v, xx, yy)
    np.testing.assert_allclose(got, want, atol=2e-4 if order == 1 else 2e-5)
    both = _Sampler(np.stack([img, -2 * img]), order)(u, v, xx, yy)  # a stack, same points
    np.testing.assert_allclose(both[1], -2 * got, atol=1e-5)


@pytest.mark.parametrize("shape", [(64, 50), (8, 8), (20, 130)])
@pytest.mark.parametrize("sigma", [1.0, 4.0, 9.5])
def test_fft_window_equals_the_direct_gaussian_sum(shape, sigma):
    from scipy import ndimage as ndi

    from stimgen.flow import _window

    a = np.random.default_rng(5).standard_normal(shape)
    want = ndi.gaussian_filter(a, sigma, mode="constant", truncate=3.0)
    np.testing.assert_allclose(_window(a, sigma), want, atol=1e-12)
    got32 = _window(np.stack([a, 3 * a]).astype(np.float32), sigma)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32[1], 3 * want, atol=1e-5)


def test_blank_region_beside_texture_has_an_exactly_zero_tensor():
    # float32 FFT window sums round at ~1e-7 of the largest: far from the texture the
    # tensor must still be exactly 0 (no eigenvalue, no flow), as a direct sum gives
    img = np.zeros((128, 128), np.float32)
    img[:32, :32] = 50 * bandpass_noise(32, 6.0, seed=8)
    res = lucas_kanade(img, np.roll(img, 1, axis=1))
    far = (slice(64, None), slice(64, None))
    assert np.all(res.min_eigenvalue[far] == 0) and np.all(res.max_eigenvalue[far] == 0)
    assert not res.reliable[far].any() and np.isnan(res.normal_u[far]).all()
    assert np.nanmedian(res.u[8:24, 10:24]) == pytest.approx(1.0, abs=0.02)  # small patch


def test_reliable_pixels_stay_forward_backward_consistent_and_converged(noise):
    # the backward estimate stops at 0.05 px; the forward one at the finest level once all
    # but 1 % of the pixels moved <= 0.002 px: the mask means what it meant
    mov = fourier_shift(noise, 2.2, -1.4)
    res = lucas_kanade(noise, mov)
    ok = res.reliable
    assert interior(ok).all()
    assert np.all(res.fb_error_px[ok] <= 0.5) and np.all(res.last_update_px[ok] <= 0.5)
    assert np.median(interior(res.fb_error_px)) < 0.01
    assert np.percentile(interior(res.last_update_px), 99) <= 2e-3
    # an occluding square that moves the other way: its uncovered and covered pixels are
    # not consistent, and are not reliable
    ref2, mov2 = noise.copy(), mov.copy()
    patch = bandpass_noise(32, 8.0, seed=9)
    ref2[48:80, 48:80] = patch
    mov2[48:80, 44:76] = patch  # the square moves 4 px left, the background 2.2 px right
    bad = lucas_kanade(ref2, mov2)
    assert not bad.reliable[50:78, 76:80].all()  # uncovered background
    assert bad.reliable_fraction < res.reliable_fraction


@pytest.mark.parametrize("shape", [(64, 50), (20, 130)])
@pytest.mark.parametrize("sigma", [1.0, 4.0])
@pytest.mark.parametrize("strips", [(3, -5, 4, -2), (0, -7, 0, 0), (10, 0, 2, -12)])
def test_border_strip_window_sums_equal_the_direct_gaussian_sum(shape, sigma, strips):
    # the update gain near the border sums only the strips that lost their data
    from scipy import ndimage as ndi

    from stimgen.flow import _window_pieces

    h, w = shape
    xa, xb, ya, yb = strips[0], w + strips[1], strips[2], h + strips[3]
    mask = np.zeros(shape, bool)
    mask[:, :xa] = mask[:, xb:] = mask[:ya] = mask[yb:] = True
    a = np.where(mask, np.random.default_rng(6).standard_normal(shape), 0)
    pieces = [(0, h, 0, xa), (0, h, xb, w), (0, ya, xa, xb), (yb, h, xa, xb)]
    want = ndi.gaussian_filter(a, sigma, mode="constant", truncate=3.0)
    np.testing.assert_allclose(_window_pieces(a, pieces, sigma), want, atol=1e-12)


@pytest.mark.parametrize(("dx", "dy"), [(2.2, -1.4), (-3.6, 0.7)])
def test_backward_estimate_returns_to_the_start_on_a_translation(dx, dy):
    # the backward flow (its own coarse-to-fine search on the moving frame) brings every
    # interior pixel back within a hundredth of a pixel
    img = bandpass_noise(128, 12.0, seed=31)
    res = lucas_kanade(img, fourier_shift(img, dx, dy))
    assert np.percentile(res.fb_error_px[16:-16, 16:-16], 99) < 0.01
    assert res.reliable[16:-16, 16:-16].mean() > 0.99


# -- two threads: the forward and the backward estimates side by side -------------------
_FLOW_FIELDS = ("u", "v", "reliable", "fb_error_px", "last_update_px", "min_eigenvalue",
                "max_eigenvalue", "normal_u", "normal_v")


def _occluded_pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass noise shifted by (2.2, -1.4) px with a square moving the other way."""
    ref = bandpass_noise(n, 16.0, seed=seed)
    mov = fourier_shift(ref, 2.2, -1.4)
    patch = bandpass_noise(32, 8.0, seed=seed + 1)
    ref[40:72, 40:72] = patch
    mov[40:72, 36:68] = patch
    return ref, mov


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [("shift", {}), ("shift32", {}), ("occluded", {}), ("occluded", {"derivative": "sobel"}),
     ("pink", {}), ("shift", {"levels": 1, "normalize": None, "min_eigenvalue": 1e-3}),
     ("occluded", {"consistency": False}), ("pink", {"consistency": False})],
)
def test_two_threads_give_the_serial_result_bit_for_bit(case, kwargs):
    # each thread runs the serial run's operations on data it does not share for writing:
    # flow, mask and forward-backward error are the same bits with 1 and 2 threads (with
    # the check: the two estimates side by side; without: the tensor beside the search)
    if case == "pink":  # 1/f noise: 4 levels, candidate starts at the coarsest
        f = np.hypot(np.fft.fftfreq(256)[:, None], np.fft.fftfreq(256)[None, :])
        f[0, 0] = np.inf
        img = np.fft.ifft2(np.fft.fft2(np.random.default_rng(3).standard_normal((256, 256))) / f).real
        ref, mov = img, fourier_shift(img, 5.3, -2.6)
    elif case == "occluded":
        ref, mov = _occluded_pair(N, seed=11)
    else:
        ref = bandpass_noise(160, 16.0, seed=5)[:, :144]
        mov = fourier_shift(bandpass_noise(160, 16.0, seed=5), 1.7, 0.6)[:, :144]
        if case == "shift32":
            ref, mov = ref.astype(np.float32), mov.astype(np.float32)
    serial = lucas_kanade(ref, mov, workers=1, **kwargs)
    threaded = lucas_kanade(ref, mov, workers=2, **kwargs)
    assert threaded.levels == serial.levels
    assert (threaded.fb_error_px is None) == (serial.fb_error_px is None)
    for name in _FLOW_FIELDS:
        a, b = getattr(serial, name), getattr(threaded, name)
        if name == "fb_error_px" and a is None:
            continue
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
    assert np.count_nonzero(serial.reliable) > 0.5 * serial.reliable.size


def test_the_forward_flow_does_not_depend_on_the_consistency_check():
    # the check only adds a backward estimate: the forward flow keeps its bits wherever the
    # check leaves a pixel reliable, and the check only removes pixels
    ref, mov = _occluded_pair(N, seed=11)
    off = lucas_kanade(ref, mov, consistency=False)
    for workers in (1, 2):
        on = lucas_kanade(ref, mov, workers=workers)
        assert not (on.reliable & ~off.reliable).any()
        assert np.count_nonzero(off.reliable & ~on.reliable) > 0  # the occlusion
        assert np.array_equal(on.u[on.reliable], off.u[on.reliable])
        assert np.array_equal(on.v[on.reliable], off.v[on.reliable])
        assert np.array_equal(on.last_update_px, off.last_update_px)


def test_frame_items_are_built_once_by_the_first_thread_that_asks():
    # the per-frame cache is shared by the two estimates: a second thread asking for an
    # item being built waits for it (or, with wait=False, gets None) instead of rebuilding;
    # the builder is held until the others have asked (no sleeps: the order is forced)
    import threading

    from stimgen.flow import _Derivatives, _Frame

    frame = _Frame(bandpass_noise(64, 8.0, seed=2), _Derivatives("gaussian", 1.0))

    def held(value):
        calls: list[int] = []
        started, release = threading.Event(), threading.Event()

        def make():
            calls.append(1)
            started.set()
            release.wait()
            if isinstance(value, Exception):
                raise value
            return value

        return make, calls, started, release

    def ask(what, make, results):
        try:
            results.append(frame._get(what, 0, make))
        except RuntimeError as exc:
            results.append(exc)

    for what, value in (("item", "built"), ("bad", RuntimeError("no"))):
        make, calls, started, release = held(value)
        results: list = []
        builder = threading.Thread(target=ask, args=(what, make, results))
        builder.start()
        started.wait()
        assert frame._get(what, 0, make, wait=False) is None  # being built elsewhere
        waiter = threading.Thread(target=ask, args=(what, make, results))
        waiter.start()  # waits for the builder (or finds the item done)
        release.set()
        builder.join()
        waiter.join()
        assert calls == [1]  # built once
        assert len(results) == 2 and all(r is value for r in results)  # value or error
    assert frame._get("item", 0, held("other")[0], wait=False) == "built"  # done: at once
    with pytest.raises(RuntimeError, match="no"):  # a failed item fails again, not rebuilt
        frame._get("bad", 0, held("other")[0])


def test_mixed_integer_part_weights_equal_the_direct_formulas():
    # the weights of offsets straddling a whole pixel (one tap more) are those of the
    # B-spline at the distance to each tap
    from stimgen.flow import _spline_weights

    def bspline(x, order):
        x = np.abs(x)
        if order == 1:
            return np.clip(1 - x, 0, None)
        return np.where(x < 1, 2 / 3 - x**2 + x**3 / 2, np.where(x < 2, (2 - x) ** 3 / 6, 0))

    f = np.random.default_rng(4).uniform(0, 2, (9, 11))
    f[0, 0], f[0, 1] = 0.0, 1.0
    for order in (1, 3):
        for scratch in (None, np.full((order + 3, 9, 11), np.nan)):
            first, w = _spline_weights(f, order, scratch)
            assert len(w) == order + 2  # one tap more than a common integer part needs
            for j, wj in enumerate(w):  # tap j sits at first + j
                np.testing.assert_allclose(wj, bspline(f - (first + j), order), atol=1e-12)


def test_movie_flow_passes_workers_on_and_keeps_its_numbers():
    frame = bandpass_noise(64, 8.0, seed=13)
    movie = np.stack([fourier_shift(frame, 1.3 * t, -0.4 * t) for t in range(3)])
    one, two = movie_flow(movie, workers=1), movie_flow(movie, workers=2)
    assert (one.u, one.v, one.reliable_fraction) == (two.u, two.v, two.reliable_fraction)
    assert one.u == pytest.approx(1.3, abs=1e-3) and "workers" not in one.options
    with pytest.raises(ValueError, match="workers must be a non-zero integer"):
        movie_flow(movie, workers=0)


@pytest.mark.parametrize("consistency", [True, False])
def test_an_interrupt_of_the_calling_thread_leaves_no_thread_waiting(monkeypatch, consistency):
    # a signal (KeyboardInterrupt, or a termination turned into an exception) reaches the
    # calling thread at any bytecode, e.g. just after it registered as the builder of an
    # item the other thread then waits for: the call must still end with the error, its
    # thread joined, instead of waiting for the other thread forever
    import threading

    import stimgen.flow as fl

    frames: list = []
    caller: list = []

    class InterruptedAtRelease:
        """The frame's lock; the calling thread is interrupted once, on releasing it
        while the reference's finest tensor is registered but not built."""

        fired = False

        def __init__(self, frame):
            self.lock, self.frame = threading.Lock(), frame

        def __enter__(self):
            return self.lock.__enter__()

        def __exit__(self, *exc):
            self.lock.__exit__(*exc)
            pending = any(k[:2] == ("tensor", 0) and not f.done() for k, f in self.frame._cache.items())
            if pending and not InterruptedAtRelease.fired and threading.current_thread() is caller[0]:
                InterruptedAtRelease.fired = True
                raise KeyboardInterrupt("signal")

    init = fl._Frame.__init__

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._lock = InterruptedAtRelease(self)
        frames.append(self)

    monkeypatch.setattr(fl._Frame, "__init__", patched_init)
    ref = bandpass_noise(64, 8.0, seed=21)
    outcome: list = []

    def call():
        caller.append(threading.current_thread())
        try:
            lucas_kanade(ref, fourier_shift(ref, 1.0, 0.5), workers=2, levels=1,
                         consistency=consistency)
        except BaseException as exc:  # noqa: BLE001 - the interrupt is the outcome
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(60)  # a liveness bound: the call takes well under a second
    stuck = thread.is_alive()
    if stuck:  # release the waiting thread so that the test run can end
        for frame in frames:
            for item in list(frame._cache.values()):
                if not item.done():
                    item.set_exception(RuntimeError("released by the test"))
        thread.join()
    assert not stuck, "a thread waited forever for an item the interrupted thread owned"
    assert InterruptedAtRelease.fired and len(outcome) == 1
    assert isinstance(outcome[0], KeyboardInterrupt)


def test_a_waiting_thread_sees_an_item_that_failed_with_a_timeout_error():
    # a builder's own TimeoutError is its item's error, not the end of a wait: the waiting
    # thread gets it instead of waiting on
    import threading

    from stimgen.flow import _Derivatives, _Frame

    frame = _Frame(bandpass_noise(64, 8.0, seed=2), _Derivatives("gaussian", 1.0))
    started, release = threading.Event(), threading.Event()
    error = TimeoutError("the builder's")

    def make():
        started.set()
        release.wait()
        raise error

    builder = threading.Thread(target=lambda: pytest.raises(TimeoutError, frame._get, "x", 0, make))
    builder.start()
    started.wait()
    got: list = []

    def ask():
        try:
            frame._get("x", 0, make)
        except TimeoutError as exc:
            got.append(exc)

    waiter = threading.Thread(target=ask, daemon=True)
    waiter.start()
    release.set()
    builder.join()
    waiter.join(60)  # a liveness bound (well under a second when right)
    stuck = waiter.is_alive()
    if stuck:
        frame._stop.set()  # ends the wait
        waiter.join()
    assert not stuck and got == [error]
