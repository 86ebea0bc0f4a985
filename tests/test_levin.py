"""Tests of stimgen.levin: weights against a per-pixel loop, matrix, cost, colorization."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import csr_array

import stimgen
from stimgen import cli
from stimgen.io import read_image, write_png
from stimgen.levin import (
    colorize,
    levin_affinity,
    levin_cost,
    levin_weights,
    rgb_to_yiq,
    rgb_to_yuv,
    yiq_to_rgb,
    yuv_to_rgb,
)


# -- reference: a straightforward per-pixel loop (as in the authors' getColorExact.m) --------
def loop_weights(y, form="gaussian", window=3, eps=1e-6):
    """Weights as a dict {(r, s): w_rs} with r, s flat pixel indices."""
    h, w = y.shape
    half = window // 2
    out = {}
    for i in range(h):
        for j in range(w):
            nb = [
                (ii, jj)
                for ii in range(max(0, i - half), min(h, i + half + 1))
                for jj in range(max(0, j - half), min(w, j + half + 1))
                if (ii, jj) != (i, j)
            ]
            vals = np.array([y[p] for p in nb])
            win = np.append(vals, y[i, j])
            mu = win.mean()
            var = np.mean((win - mu) ** 2)
            if form == "gaussian":
                csig = max(0.6 * var, np.min((vals - y[i, j]) ** 2) / math.log(100), 2 * eps)
                g = np.exp(-((vals - y[i, j]) ** 2) / csig)
            else:
                g = 1 + (y[i, j] - mu) * (vals - mu) / (var + eps)
            g = g / g.sum()
            for (ii, jj), wt in zip(nb, g, strict=True):
                out[(i * w + j, ii * w + jj)] = wt
    return out


def dense_from_nw(nw):
    """Dense W (N, N) from the (H, W, K) layout, via the documented offset table."""
    h, w, k = nw.weights.shape
    dense = np.zeros((h * w, h * w))
    for i in range(h):
        for j in range(w):
            for kk in range(k):
                if nw.valid[i, j, kk]:
                    dy, dx = nw.offsets[kk]
                    dense[i * w + j, (i + dy) * w + j + dx] = nw.weights[i, j, kk]
                else:
                    assert nw.weights[i, j, kk] == 0.0
    return dense


SHAPES = [(7, 9), (1, 6), (6, 1), (2, 2), (3, 2), (2, 5)]


@pytest.mark.parametrize("form", ["gaussian", "correlation"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [3, 5])
def test_weights_match_loop_reference(form, shape, window, rng):
    y = rng.random(shape)
    nw = levin_weights(y, form=form, window=window)
    ref = loop_weights(y, form, window)
    dense = dense_from_nw(nw)
    expected = np.zeros_like(dense)
    for (r, s), wt in ref.items():
        expected[r, s] = wt
    np.testing.assert_allclose(dense, expected, rtol=0, atol=1e-12)
    # the valid mask is exactly the set of in-image neighbours
    assert nw.valid.sum() == len(ref)


def test_layout_and_offsets():
    nw = levin_weights(np.arange(12.0).reshape(3, 4) / 12)
    assert nw.weights.shape == (3, 4, 8) and nw.valid.shape == (3, 4, 8)
    assert nw.offsets.tolist() == [
        [-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]
    ]  # fmt: skip
    counts = nw.valid.sum(axis=-1)
    assert counts.tolist() == [[3, 5, 5, 3], [5, 8, 8, 5], [3, 5, 5, 3]]
    assert levin_weights(np.zeros((6, 6)), window=5).weights.shape == (6, 6, 24)


@pytest.mark.parametrize("form", ["gaussian", "correlation"])
def test_rows_sum_to_one_and_gaussian_nonnegative(form, rng):
    y = rng.random((40, 33))
    w = levin_weights(y, form=form).weights
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=0, atol=1e-13)
    if form == "gaussian":
        assert (w >= 0).all()
    else:  # the paper's form can give negative weights (documented)
        assert (w < 0).any()


@pytest.mark.parametrize("form", ["gaussian", "correlation"])
def test_weights_invariant_to_luminance_offset(form, rng):
    y = rng.random((16, 16)) * 0.5
    a = levin_weights(y, form=form).weights
    b = levin_weights(y + 0.25, form=form).weights
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", ["gaussian", "correlation"])
def test_flat_image_and_isolated_outlier_give_uniform_weights(form):
    flat = np.full((5, 5), 0.5)
    w = levin_weights(flat, form=form).weights
    np.testing.assert_allclose(w[2, 2], 1 / 8, rtol=0, atol=1e-15)
    np.testing.assert_allclose(w[0, 0][levin_weights(flat).valid[0, 0]], 1 / 3, atol=1e-15)
    outlier = flat.copy()
    outlier[2, 2] = 1.0  # neighbours all equal: the unregularized correlation form is 0/0
    w = levin_weights(outlier, form=form).weights
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w[2, 2], 1 / 8, rtol=0, atol=1e-9)


def test_correlation_regularizer_bound(rng):
    # raw weights sum to n - (Y_r - mu_r)^2 / (var + eps) >= n eps / (var + eps) > 0:
    # with a small eps an outlier's weights are still uniform, not 0/0
    y = np.full((3, 3), 0.2)
    y[1, 1] = 0.9
    for eps in (1e-12, 1e-6, 1.0):
        w = levin_weights(y, form="correlation", eps=eps).weights
        np.testing.assert_allclose(w[1, 1], 1 / 8, rtol=1e-3)


# -- affinity matrix ---------------------------------------------------------------------
@pytest.mark.parametrize("form", ["gaussian", "correlation"])
@pytest.mark.parametrize("shape", [(7, 9), (1, 6), (6, 1), (2, 3), (3, 2)])
@pytest.mark.parametrize("window", [3, 5])
def test_affinity_is_identity_minus_w(form, shape, window, rng):
    y = rng.random(shape)
    a = levin_affinity(y, form=form, window=window)
    assert isinstance(a, csr_array) and a.shape == (y.size, y.size)
    assert a.has_sorted_indices
    expected = np.eye(y.size) - dense_from_nw(levin_weights(y, form=form, window=window))
    np.testing.assert_allclose(a.toarray(), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(a @ np.ones(y.size), 0.0, atol=1e-13)


def test_affinity_pixel_index_is_row_major(rng):
    y = rng.random((4, 5))
    a = levin_affinity(y).toarray()
    r = 2 * 5 + 3  # row 2, column 3
    nz = set(np.flatnonzero(a[r]))
    assert nz == {(2 + dy) * 5 + 3 + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)}


def test_affinity_mask_gives_identity_rows(rng):
    y = rng.random((6, 7))
    mask = np.zeros((6, 7), dtype=bool)
    mask[0, 0] = mask[3, 4] = True
    a = levin_affinity(y, mask=mask).toarray()
    free = levin_affinity(y).toarray()
    for r in range(y.size):
        if mask.ravel()[r]:
            np.testing.assert_array_equal(a[r], np.eye(y.size)[r])
        else:
            np.testing.assert_array_equal(a[r], free[r])
    # 0/1 integer masks are accepted
    np.testing.assert_array_equal(levin_affinity(y, mask=mask.astype(int)).toarray(), a)


# -- cost --------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["gaussian", "correlation"])
def test_cost_equals_sparse_form_and_gradient_matches_finite_differences(form, rng):
    y = rng.random((9, 11))
    u = rng.standard_normal((9, 11))
    cost, grad = levin_cost(u, y, form=form)
    a = levin_affinity(y, form=form)
    e = a @ u.ravel()
    assert cost == pytest.approx(float(e @ e), rel=1e-12)
    np.testing.assert_allclose(grad.ravel(), 2 * (a.T @ e), rtol=0, atol=1e-12)
    h = 1e-5
    for idx in [(0, 0), (4, 5), (8, 10), (0, 7)]:
        up, um = u.copy(), u.copy()
        up[idx] += h
        um[idx] -= h
        fd = (levin_cost(up, y, form=form)[0] - levin_cost(um, y, form=form)[0]) / (2 * h)
        assert grad[idx] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_cost_of_constant_is_zero_and_channels_add(rng):
    y = rng.random((8, 8))
    cost, grad = levin_cost(np.full((8, 8), 3.0), y)
    assert cost == pytest.approx(0.0, abs=1e-24)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)
    u = rng.standard_normal((8, 8, 2))
    c2, g2 = levin_cost(u, y)
    assert c2 == pytest.approx(levin_cost(u[..., 0], y)[0] + levin_cost(u[..., 1], y)[0])
    np.testing.assert_allclose(g2[..., 1], levin_cost(u[..., 1], y)[1])


# -- colour spaces -------------------------------------------------------------------------
def test_colour_spaces_round_trip_and_gray_has_no_chroma(rng):
    rgb = rng.random((5, 4, 3))
    np.testing.assert_allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-14)
    np.testing.assert_allclose(yuv_to_rgb(rgb_to_yuv(rgb)), rgb, atol=1e-14)
    gray = np.repeat(rng.random((5, 4, 1)), 3, axis=-1)
    for to in (rgb_to_yiq, rgb_to_yuv):
        out = to(gray)
        np.testing.assert_allclose(out[..., 0], gray[..., 0], atol=1e-15)
        np.testing.assert_allclose(out[..., 1:], 0.0, atol=1e-15)


# -- colorization --------------------------------------------------------------------------
def piecewise_smooth_scene(n=64):
    """RGB image of three regions (background, disk, square), each with smooth luminance
    and chrominance ramps; colour edges coincide with luminance edges. Returns (rgb, yiq)."""
    r, c = np.mgrid[0:n, 0:n] / (n - 1)
    disk = (r - 0.35) ** 2 + (c - 0.4) ** 2 < 0.2**2
    square = (np.abs(r - 0.72) < 0.18) & (np.abs(c - 0.7) < 0.2)
    y = np.select([disk, square], [0.6 + 0.1 * r, 0.8 - 0.1 * c], 0.3 + 0.1 * c)
    i = np.select([disk, square], [-0.15 + 0.05 * c, np.full_like(c, 0.15)], 0.05 + 0.05 * r)
    q = np.select([disk, square], [np.full_like(c, 0.1), 0.12 - 0.05 * r], -0.05 + 0.04 * c)
    yiq = np.stack([y, i, q], axis=-1)
    return yiq_to_rgb(yiq), yiq


@pytest.mark.parametrize(
    ("form", "rms_max", "abs_max"), [("gaussian", 0.004, 0.02), ("correlation", 0.005, 0.06)]
)
def test_colorize_recovers_chrominance_from_sparse_scribbles(form, rms_max, abs_max):
    rgb, yiq = piecewise_smooth_scene()
    assert rgb.min() > 0 and rgb.max() < 1  # in gamut: clipping plays no role
    mask = np.random.default_rng(7).random(yiq.shape[:2]) < 0.02  # ~2 % of the pixels
    assert 60 < mask.sum() < 110
    out = colorize(yiq[..., 0], rgb, mask, form=form)
    est = rgb_to_yiq(out)
    np.testing.assert_allclose(est[..., 0], yiq[..., 0], atol=1e-12)  # Y is the input's
    np.testing.assert_allclose(out[mask], rgb[mask], atol=1e-12)  # scribbles are kept
    err = est[..., 1:] - yiq[..., 1:]
    # the chrominance varies by ~0.3 between regions (RMS 0.079 about 0)
    assert np.sqrt(np.mean(err**2)) < rms_max
    assert np.abs(err).max() < abs_max


@pytest.mark.parametrize("form", ["gaussian", "correlation"])
@pytest.mark.parametrize("window", [3, 5])
@pytest.mark.parametrize("shape", [(23, 31), (3, 40), (40, 1)])
def test_colorize_solves_the_authors_system(form, window, shape, rng):
    # reordered, eliminated, unpivoted solve == spsolve of levin_affinity(Y, mask) U = b
    from scipy.sparse.linalg import spsolve

    y = rng.random(shape)
    rgb = rng.random((*shape, 3))
    mask = rng.random(shape) < 0.05
    mask.flat[3] = True
    out = colorize(y, rgb, mask, form=form, window=window, clip=False)
    a = levin_affinity(y, mask=mask, form=form, window=window)
    b = np.zeros((y.size, 2))
    b[mask.ravel()] = rgb_to_yiq(rgb[mask])[:, 1:]
    x = spsolve(a.tocsc(), b)
    np.testing.assert_allclose(rgb_to_yiq(out)[..., 1:].reshape(-1, 2), x, rtol=0, atol=1e-9)


def test_colorize_from_rgb_gray_mask_from_differences_and_yuv():
    rgb, yiq = piecewise_smooth_scene(32)
    gray_rgb = np.repeat(yiq[..., :1], 3, axis=-1)
    mask = np.zeros((32, 32), dtype=bool)
    mask[::6, ::6] = True
    marked = np.where(mask[..., None], rgb, gray_rgb)
    a = colorize(gray_rgb, marked)  # mask: pixels where marked differs from gray
    b = colorize(yiq[..., 0], rgb, mask)
    np.testing.assert_allclose(a, b, atol=1e-12)
    c = colorize(yiq[..., 0], rgb, mask, space="yuv")
    assert np.abs(c - rgb).mean() < 0.01


def test_colorize_all_scribbled_and_clip():
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    y = rgb_to_yiq(rgb)[..., 0]
    np.testing.assert_allclose(colorize(y, rgb, np.ones((1, 2), bool)), rgb, atol=1e-12)
    # pure red's chrominance on white luminance is out of gamut: clipped unless clip=False
    out = colorize(np.ones((1, 2)), rgb, np.array([[True, False]]), clip=False)
    assert out.max() > 1
    assert colorize(np.ones((1, 2)), rgb, np.array([[True, False]])).max() == 1.0


@pytest.mark.parametrize("form", ["gaussian", "correlation"])
def test_one_scribble_colour_fills_everything_even_across_edges(form):
    # constants solve every equation (rows of W sum to 1): one colour spreads everywhere;
    # Gaussian raw weights never vanish across an edge (>= exp(-30)): no region is cut off
    y = np.full((8, 12), 0.3)
    y[:, 6:] = 0.8
    rgb = np.broadcast_to(np.array([0.2, 0.5, 0.1]), (8, 12, 3))
    mask = np.zeros((8, 12), dtype=bool)
    mask[4, 2] = True
    assert levin_weights(y).weights[:, 5, 4].min() > math.exp(-30)
    chroma = rgb_to_yiq(colorize(y, rgb, mask, form=form, clip=False))[..., 1:]
    np.testing.assert_allclose(
        chroma, np.broadcast_to(rgb_to_yiq(rgb[4, 2])[1:], chroma.shape), atol=1e-9
    )


# -- bad input -----------------------------------------------------------------------------
def test_bad_luminance():
    with pytest.raises(
        ValueError, match=r"luminance must have 2 dimensions, got shape \(4, 4, 3\)"
    ):
        levin_weights(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="luminance must have 2 dimensions"):
        levin_affinity(np.zeros(5))
    bad = np.zeros((4, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="luminance contains NaN"):
        levin_weights(bad)
    with pytest.raises(ValueError, match="luminance contains NaN"):
        levin_cost(np.zeros((4, 4)), bad)
    with pytest.raises(ValueError, match="at least 2 pixels"):
        levin_weights(np.zeros((1, 1)))


def test_bad_options():
    y = np.zeros((4, 4))
    with pytest.raises(
        ValueError, match="form must be one of 'gaussian', 'correlation'; got 'gauss'"
    ):
        levin_weights(y, form="gauss")
    with pytest.raises(ValueError, match="window must be an odd integer >= 3"):
        levin_weights(y, window=4)
    with pytest.raises(ValueError, match="window must be an integer >= 3, got 1"):
        levin_weights(y, window=1)
    with pytest.raises(ValueError, match="eps must be finite and > 0, got 0"):
        levin_weights(y, eps=0)
    with pytest.raises(ValueError, match=r"u shape \(4, 5\) does not match the luminance shape"):
        levin_cost(np.zeros((4, 5)), y)


def test_bad_mask_and_scribbles():
    y = np.zeros((4, 4))
    rgb = np.zeros((4, 4, 3))
    with pytest.raises(
        ValueError, match=r"mask shape \(4, 5\) does not match the image shape \(4, 4\)"
    ):
        levin_affinity(y, mask=np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match=r"mask shape \(3, 4\) does not match"):
        colorize(y, rgb, np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="mask must be boolean"):
        colorize(y, rgb, np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="mask has no scribbled pixels"):
        colorize(y, rgb, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="none differs from gray by more than threshold=0.01"):
        colorize(y, rgb)
    with pytest.raises(ValueError, match="gray must be a float array .* got dtype uint8"):
        colorize(np.zeros((4, 4), np.uint8), rgb)
    with pytest.raises(ValueError, match=r"scribbles must have 3 dimensions, got shape \(4, 4\)"):
        colorize(y, y)
    with pytest.raises(ValueError, match=r"scribbles shape \(4, 3, 3\) does not match"):
        colorize(y, np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="space must be one of 'yiq', 'yuv'"):
        colorize(y, rgb, space="lab")


def test_exported_from_package():
    for name in ("levin_weights", "levin_affinity", "levin_cost", "colorize"):
        assert getattr(stimgen, name) is globals()[name]


# -- CLI -------------------------------------------------------------------------------------
def test_cli_colorize(tmp_path, capsys):
    rgb, yiq = piecewise_smooth_scene(48)
    gray8 = np.round(yiq[..., 0] * 255).astype(np.uint8)
    marked = np.repeat(gray8[..., None], 3, axis=-1)
    rgb8 = np.round(rgb * 255).astype(np.uint8)
    mask = np.random.default_rng(1).random((48, 48)) < 0.03
    marked[mask] = rgb8[mask]
    write_png(tmp_path / "gray.png", gray8)
    write_png(tmp_path / "marked.png", marked)
    out = tmp_path / "out.png"
    args = ["colorize", str(tmp_path / "gray.png"), str(tmp_path / "marked.png")]
    assert cli.main([*args, "--out", str(out), "--json"]) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    result = read_image(out)
    assert result.shape == (48, 48, 3) and result.dtype == np.uint8
    # scribbles that differ from gray by less than the threshold are not counted
    assert 0 < report["scribbled_pixels"] <= mask.sum()
    assert np.abs(result.astype(float) - rgb8).mean() < 3  # 8-bit levels


def test_cli_colorize_errors(tmp_path, capsys):
    gray = np.full((8, 8), 100, np.uint8)
    write_png(tmp_path / "gray.png", gray)
    out = str(tmp_path / "out.png")
    assert (
        cli.main(["colorize", str(tmp_path / "gray.png"), str(tmp_path / "gray.png"), "--out", out])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stimgen colorize: error: mask has no scribbled pixels" in err
    assert (
        cli.main(
            ["colorize", str(tmp_path / "missing.png"), str(tmp_path / "gray.png"), "--out", out]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    write_png(tmp_path / "small.png", np.zeros((4, 8, 3), np.uint8))
    assert (
        cli.main(
            ["colorize", str(tmp_path / "gray.png"), str(tmp_path / "small.png"), "--out", out]
        )
        == 2
    )
    assert "does not match" in capsys.readouterr().err


def test_mostly_scribbled_warns_and_cli_needs_png(tmp_path, rng, capsys):
    gray = rng.random((12, 12))
    marked = np.repeat(gray[..., None], 3, axis=-1) + rng.normal(0, 0.05, (12, 12, 3))
    with pytest.warns(UserWarning, match=r"of the pixels differ from the gray image"):
        stimgen.colorize(gray, np.clip(marked, 0, 1))
    assert cli.main(["colorize", "g.png", "s.png", "--out", str(tmp_path / "o.jpg")]) == 2
    assert "--out must name a .png file" in capsys.readouterr().err
