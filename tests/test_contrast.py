"""Contrast, clipping and quantization."""

import numpy as np
import pytest

from stimgen import quantize, rms_contrast
from stimgen.contrast import clip_contrast, michelson_contrast, set_rms_contrast, to_psychopy


def test_rms_contrast_definition(rng):
    x = rng.normal(0.1, 0.3, (4, 64, 64))
    np.testing.assert_allclose(rms_contrast(x), x.std(axis=(1, 2)), rtol=1e-12)
    assert rms_contrast(x[0]) == pytest.approx(x[0].std(), rel=1e-12)
    assert rms_contrast(x, per_image=False) == pytest.approx(x.std(), rel=1e-12)


def test_set_rms_contrast_exact_never_minmax(rng):
    x = (rng.standard_normal((3, 50, 60)) * [[[1.0]], [[5.0]], [[0.01]]] + 7).astype(np.float32)
    y = set_rms_contrast(x, 0.25, mean=0.1)
    np.testing.assert_allclose(rms_contrast(y), 0.25, rtol=1e-6)
    np.testing.assert_allclose(y.mean(axis=(1, 2), dtype=np.float64), 0.1, atol=1e-6)
    # a linear map: correlation with the input is 1 (shape of the distribution kept)
    assert np.corrcoef(x[1].ravel(), y[1].ravel())[0, 1] == pytest.approx(1.0, abs=1e-6)
    # in place
    z = x.copy()
    assert set_rms_contrast(z, 0.2, out=z) is z


def test_set_rms_contrast_errors():
    with pytest.raises(ValueError, match=r"rms_contrast must be in \(0, 1\], got 0"):
        set_rms_contrast(np.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="constant"):
        set_rms_contrast(np.ones((4, 4)), 0.2)
    with pytest.raises(ValueError, match="must be float"):
        set_rms_contrast(np.arange(16).reshape(4, 4), 0.2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        set_rms_contrast(np.array([[np.nan, 1.0], [0.0, 1.0]]), 0.2)


def test_michelson():
    x = np.array([[-0.5, 0.5], [0.0, 0.0]])
    assert michelson_contrast(x) == pytest.approx(0.5)  # L from 0.5 to 1.5


def test_clip_reports_fraction():
    x = np.array([[-1.5, 0.0], [0.5, 2.0]])
    with pytest.warns(UserWarning, match="50.0000% of pixels exceed"):
        y, frac = clip_contrast(x)
    assert frac == 0.5 and y.min() == -1 and y.max() == 1
    y, frac = clip_contrast(np.zeros((2, 2)))
    assert frac == 0.0


def test_quantize_mapping_and_clipping():
    x = np.array([[-1.0, 0.0, 1.0, 1.2]])
    q, frac = quantize(x, 8)
    assert q.dtype == np.uint8 and q.tolist() == [[0, 128, 255, 255]] and frac == 0.25
    q16, _ = quantize(x[:, :3], 16)
    assert q16.dtype == np.uint16 and q16.tolist() == [[0, 32768, 65535]]
    qg, _ = quantize(np.array([[-0.5]]), 8, gamma=2.0)  # l = 0.25 -> 0.5 encoded
    assert qg[0, 0] == 128


def test_noisy_bit_dither_preserves_mean():
    value = 0.0123  # between two 8-bit levels
    x = np.full((512, 512), value)
    exact = (value + 1) / 2 * 255
    q, _ = quantize(x, 8, dither="noisy-bit", rng=3)
    frac = exact - np.floor(exact)
    se = np.sqrt(frac * (1 - frac) / x.size)
    assert abs(q.mean() - exact) < 4 * se
    assert set(np.unique(q)) == {int(np.floor(exact)), int(np.floor(exact)) + 1}
    r, _ = quantize(x, 8)  # plain rounding is biased by up to half a level
    assert abs(r.mean() - exact) > 10 * se


def test_quantize_errors():
    with pytest.raises(ValueError, match="bits must be between 1 and 16, got 32"):
        quantize(np.zeros((2, 2)), 32)
    with pytest.raises(ValueError, match="dither must be one of 'none', 'noisy-bit'"):
        quantize(np.zeros((2, 2)), 8, dither="floyd")


def test_to_psychopy():
    x = np.array([[0.5, -0.5], [0.0, 1.0]])
    t = to_psychopy(x, flip_rows=True)
    assert t.dtype == np.float32 and t[0].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="exceeds"):
        to_psychopy(x * 3)


def test_black_image_and_colour_shaped_input():
    with pytest.raises(ValueError, match="black everywhere"):
        michelson_contrast(np.full((4, 4), -1.0))
    with pytest.warns(UserWarning, match=r"looks like a colour image \(H, W, C\)"):
        rms_contrast(np.zeros((32, 32, 3)) + np.arange(3))
