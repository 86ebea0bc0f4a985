"""Tests for stimgen.standardize: exactness, layouts, policies, errors and the memory bound."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimgen import standardize


def _truth(x: np.ndarray, axis: tuple[int, ...], ddof: int = 0):
    x64 = x.astype(np.float64)
    return x64.mean(axis=axis), x64.std(axis=axis, ddof=ddof)


def _fsum_stats(x: np.ndarray, axis: tuple[int, ...]):
    """Mean and population std of each group from exactly rounded sums (math.fsum)."""
    import math

    xs = np.moveaxis(x.astype(np.float64), axis, tuple(range(-len(axis), 0)))
    flat = xs.reshape(*xs.shape[: xs.ndim - len(axis)], -1)
    means, stds = np.empty(flat.shape[:-1]), np.empty(flat.shape[:-1])
    for idx in np.ndindex(*flat.shape[:-1]):
        v = flat[idx]
        means[idx] = math.fsum(v) / v.size
        d = v - means[idx]
        stds[idx] = math.sqrt(math.fsum(d * d) / v.size)
    return means, stds


def _check_stats(stats, mean, std, dtype=np.float32):
    """float32 data: stats to float32 resolution of the std; float64 data: ~1e-13."""
    tol = 2e-7 if np.dtype(dtype) != np.float64 else 1e-13
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-14, atol=tol * std.max())
    np.testing.assert_allclose(stats.std, std, rtol=tol)


def _check_unit(out: np.ndarray, axis: tuple[int, ...], tol: float = 1e-6) -> None:
    o = out.astype(np.float64)
    assert np.abs(o.mean(axis=axis)).max() < tol
    assert np.abs(o.std(axis=axis) - 1).max() < tol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "offset, spread", [(1000.0, 1e-2), (1e4, None), (0.0, 1.0)], ids=["1000+noise", "1e4+U", "0"]
)
def test_offset_data_comes_out_mean0_std1_channel_last(rng, dtype, offset, spread):
    shape = (6, 48, 40, 3)
    noise = rng.random(shape) if spread is None else spread * rng.standard_normal(shape)
    base = (offset + noise).astype(dtype)
    a = base.copy()
    out, stats = standardize(a, return_stats=True)
    assert out is a  # in place
    mean, std = _truth(base, (1, 2))
    _check_stats(stats, mean, std, dtype)
    assert stats.mean.shape == (6, 3)
    _check_unit(out, (1, 2))
    # the same as the float64 formula with exactly summed statistics, to the output's
    # precision (plus the float64 reference's own rounding of the offset, ~eps64 * offset
    # / std; numpy's float64 std errs by ~1e-15 itself, as much as the tolerance)
    mean, std = _fsum_stats(base, (1, 2))
    ref = (base.astype(np.float64) - mean[:, None, None]) / std[:, None, None]
    atol = 4 * np.finfo(dtype).eps * np.abs(ref).max() + 1e-14 * offset / std.min()
    np.testing.assert_allclose(out, ref, rtol=0, atol=atol)


def test_naive_float32_vectorized_answer_fails_where_standardize_does_not(rng):
    # P2: float32 accumulation without pairwise summation on 1000 + small noise
    base = (1000 + 0.01 * rng.standard_normal((2, 256, 256, 3))).astype(np.float32)
    naive = (base - base.mean(axis=(1, 2), keepdims=True)) / base.std(axis=(1, 2), keepdims=True)
    ours = standardize(base.copy())
    err_naive = np.abs(naive.astype(np.float64).mean(axis=(1, 2))).max()
    err_ours = np.abs(ours.astype(np.float64).mean(axis=(1, 2))).max()
    assert err_ours < 1e-6
    assert err_naive > 100 * err_ours


def test_channel_first(rng):
    base = (500 + rng.standard_normal((4, 3, 33, 65))).astype(np.float32)
    out, stats = standardize(base.copy(), channel_axis=1, return_stats=True)
    mean, std = _truth(base, (2, 3))
    _check_stats(stats, mean, std)
    _check_unit(out, (2, 3))


@pytest.mark.parametrize(
    "shape, kw, axis",
    [
        ((40, 50, 3), {}, (0, 1)),
        ((40, 50), {"channel_axis": None}, (0, 1)),
        ((5, 40, 50), {"channel_axis": None}, (1, 2)),
        ((3, 40, 50), {"channel_axis": 0}, (1, 2)),
        ((7, 20, 30, 3), {"axis": (0, 1, 2)}, (0, 1, 2)),  # per channel over the batch
        ((7, 20, 30, 3), {"axis": (0, 2)}, (0, 2)),  # not a contiguous run: generic path
        ((200, 3), {"axis": 0}, (0,)),
    ],
)
def test_layouts_and_general_axes(rng, shape, kw, axis):
    base = (300 + 5 * rng.standard_normal(shape)).astype(np.float32)
    out, stats = standardize(base.copy(), return_stats=True, **kw)
    mean, std = _truth(base, axis)
    _check_stats(stats, mean, std)
    _check_unit(out, axis)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 4),
    h=st.integers(1, 40),
    w=st.integers(2, 40),
    c=st.integers(1, 4),
    offset=st.sampled_from([0.0, 1.0, 1e3, -1e4]),
    chunk_kib=st.sampled_from([1, 8, 2048]),
)
def test_fast_path_equals_generic_path(n, h, w, c, offset, chunk_kib):
    rng = np.random.default_rng(n * 1000 + h * 10 + w)
    base = (offset + rng.standard_normal((n, h, w, c))).astype(np.float32)
    fast, s_fast = standardize(base.copy(), return_stats=True, chunk_bytes=chunk_kib * 1024)
    fortran = np.asfortranarray(base)  # not C-contiguous: the generic float64 path
    slow, s_slow = standardize(fortran, return_stats=True)
    _check_stats(s_fast, s_slow.mean, s_slow.std)
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def test_ddof(rng):
    base = rng.standard_normal((3, 10, 12, 2))
    _, stats = standardize(base.copy(), ddof=1, return_stats=True)
    np.testing.assert_allclose(stats.std, base.std(axis=(1, 2), ddof=1), rtol=1e-12)


def test_uint8_goes_to_new_float32_and_input_is_untouched(rng):
    img = rng.integers(0, 256, (3, 30, 20, 3), dtype=np.uint8)
    keep = img.copy()
    out, stats = standardize(img, return_stats=True)
    assert out.dtype == np.float32 and out is not img
    np.testing.assert_array_equal(img, keep)
    mean, std = _truth(img, (1, 2))
    _check_stats(stats, mean, std)  # in 0..255 units: no rescaling
    _check_unit(out, (1, 2))
    assert standardize(img.astype(np.uint16), dtype=np.float64).dtype == np.float64


def _exact_int_stats(x: np.ndarray, axis: tuple[int, ...]):
    """Correctly rounded mean and std of integer data from Python-integer sums."""
    xs = np.moveaxis(x.astype(np.int64), axis, tuple(range(-len(axis), 0)))
    flat = xs.reshape(*xs.shape[: xs.ndim - len(axis)], -1)
    n = flat.shape[-1]
    means, stds = np.empty(flat.shape[:-1]), np.empty(flat.shape[:-1])
    for idx in np.ndindex(*flat.shape[:-1]):
        s1 = int(flat[idx].sum())
        s2 = int((flat[idx] * flat[idx]).sum())
        means[idx] = s1 / n
        stds[idx] = np.sqrt((n * s2 - s1 * s1) / (n * n))
    return means, stds


@pytest.mark.parametrize(
    "dtype, low, high, shape, kw, axis",
    [
        (np.uint8, 0, 256, (3, 40, 30, 3), {}, (1, 2)),  # whole groups in one pass
        (np.uint8, 0, 256, (2, 600, 520, 3), {}, (1, 2)),  # > 258 rows: split exact sums
        (np.uint8, 0, 256, (3, 3, 20, 30), {"channel_axis": 1}, (2, 3)),
        (np.uint8, 0, 256, (5, 20, 30, 3), {"axis": (0, 1, 2)}, (0, 1, 2)),
        (np.uint16, 60000, 60003, (2, 70, 50, 3), {}, (1, 2)),  # 16-bit: integer sums first
        (np.int8, -128, 128, (2, 30, 30, 2), {"chunk_bytes": 1024}, (1, 2)),
        (np.int16, -32768, 32768, (2, 30, 30, 2), {"dtype": np.float64}, (1, 2)),
    ],
)
def test_integer_input_exact_stats_in_one_pass(rng, dtype, low, high, shape, kw, axis):
    x = rng.integers(low, high, shape).astype(dtype)
    keep = x.copy()
    out, stats = standardize(x, return_stats=True, **kw)
    np.testing.assert_array_equal(x, keep)
    mean, std = _exact_int_stats(x, axis)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-15, atol=0)
    np.testing.assert_allclose(stats.std, std, rtol=1e-14, atol=0)
    ref = (x.astype(np.float64) - np.expand_dims(mean, axis)) / np.expand_dims(std, axis)
    eps = np.finfo(out.dtype).eps
    np.testing.assert_allclose(out, ref, rtol=0, atol=4 * eps * np.abs(ref).max())
    _check_unit(out, axis, tol=1e-6 if out.dtype == np.float32 else 1e-12)


def test_integer_input_big_groups_two_pass_equals_one_pass(rng, monkeypatch):
    import importlib

    mod = importlib.import_module("stimgen.standardize")  # the module, not the function
    x = rng.integers(0, 256, (3, 64, 48, 3), dtype=np.uint8)
    x[1, ..., 2] = 17  # a constant group
    with pytest.warns(RuntimeWarning, match="1 of 9 image-channels are constant"):
        one, s_one = standardize(x, return_stats=True)
    monkeypatch.setattr(mod, "_ONE_PASS_GROUP_BYTES", 0)
    with pytest.warns(RuntimeWarning, match="1 of 9 image-channels are constant"):
        two, s_two = standardize(x, return_stats=True, chunk_bytes=4096)
    np.testing.assert_array_equal(s_one.mean, s_two.mean)
    np.testing.assert_array_equal(s_one.std, s_two.std)
    np.testing.assert_array_equal(one, two)
    assert (one[1, ..., 2] == 0).all() and s_one.std[1, 2] == 0 and s_one.mean[1, 2] == 17
    monkeypatch.setattr(mod, "_INT64_SUMS", 0)  # sums in Python integers (gigantic groups)
    with pytest.warns(RuntimeWarning, match="1 of 9 image-channels are constant"):
        big, s_big = standardize(x, return_stats=True)
    np.testing.assert_array_equal(s_big.std, s_one.std)
    np.testing.assert_array_equal(big, one)
    with pytest.raises(ValueError, match=r"constant group \(std 0\) in group \(1, 2\)"):
        standardize(x, constant="raise")
    with pytest.warns(RuntimeWarning, match="set to NaN"):
        assert np.isnan(standardize(x, constant="nan")[1, ..., 2]).all()


def test_integer_input_noncontiguous_and_given_stats(rng):
    x = rng.integers(0, 256, (4, 20, 30, 3), dtype=np.uint8)
    view = x[:, ::2]  # not contiguous: copy to the output, then the float path
    out, stats = standardize(view, return_stats=True)
    mean, std = _exact_int_stats(view, (1, 2))
    np.testing.assert_allclose(stats.std, std, rtol=1e-6)
    _check_unit(out, (1, 2))
    given = standardize(x, mean=[100.0, 110.0, 120.0], std=[50.0, 60.0, 70.0])
    ref = (x - np.array([100.0, 110.0, 120.0])) / np.array([50.0, 60.0, 70.0])
    assert given.dtype == np.float32
    np.testing.assert_allclose(given, ref, rtol=1e-6, atol=1e-6)


def test_inplace_false_and_out(rng):
    base = (10 + rng.standard_normal((2, 16, 16, 3))).astype(np.float32)
    keep = base.copy()
    out = standardize(base, inplace=False)
    np.testing.assert_array_equal(base, keep)
    target = np.empty_like(base, dtype=np.float64)
    res = standardize(base, out=target)
    assert res is target
    np.testing.assert_allclose(target, out, atol=1e-6)


def test_given_dataset_statistics_like_torchvision_normalize(rng):
    img = rng.random((2, 8, 8, 3)).astype(np.float32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    out = standardize(img.copy(), mean=mean, std=std)
    ref = (img.astype(np.float64) - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    chw = np.moveaxis(img, -1, 1).copy()
    out_cf = standardize(chw, mean=mean, std=std, channel_axis=1)
    np.testing.assert_allclose(np.moveaxis(out_cf, 1, -1), ref, rtol=1e-6)


def test_constant_channels_zero_warns_once(rng):
    a = rng.standard_normal((3, 8, 8, 3))
    a[0, ..., 1] = 7.25
    a[2, ..., 0] = 1e4
    with pytest.warns(RuntimeWarning, match=r"2 of 9 image-channels are constant") as rec:
        out, stats = standardize(a, return_stats=True)
    assert len(rec) == 1
    assert np.all(out[0, ..., 1] == 0) and np.all(out[2, ..., 0] == 0)
    assert stats.std[0, 1] == 0 and stats.mean[0, 1] == 7.25
    _check_unit(out[1], (0, 1))


def test_constant_channels_nan_and_raise(rng):
    a = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    a[1, ..., 2] = 3.0
    with pytest.warns(RuntimeWarning, match="set to NaN"):
        out = standardize(a.copy(), constant="nan")
    assert np.isnan(out[1, ..., 2]).all() and np.isfinite(out[0]).all()
    b = a.copy()
    with pytest.raises(ValueError, match=r"constant group .* \(1, 2\)"):
        standardize(b, constant="raise")
    np.testing.assert_array_equal(b[1], a[1])  # the offending image is untouched


def test_nonfinite_raises_unless_propagate(rng):
    a = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    a[1, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in group"):
        standardize(a.copy())
    out = standardize(a.copy(), nonfinite="propagate")
    assert np.isnan(out[1, ..., 0]).all()
    _check_unit(out[0], (0, 1))
    a[1, 3, 3, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        standardize(np.asfortranarray(a))  # generic path too


def test_memmap_in_place(tmp_path, rng):
    path = tmp_path / "batch.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(4, 32, 32, 3))
    mm[:] = 100 + rng.standard_normal(mm.shape)
    mm.flush()
    res = standardize(mm)
    assert res is mm
    mm.flush()
    again = np.memmap(path, dtype=np.float32, mode="r", shape=(4, 32, 32, 3))
    _check_unit(np.asarray(again), (1, 2))
    with pytest.raises(ValueError, match="read-only"):
        standardize(again)
    assert standardize(again, inplace=False).shape == again.shape


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time, tracemalloc
    import numpy as np
    from stimgen import standardize

    path, shape = sys.argv[1], (32, 512, 512, 3)
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=shape)
    for i in range(shape[0]):
        mm[i] = 1000 + np.random.default_rng(i).standard_normal(shape[1:], dtype=np.float32)
    mm.flush()

    def anon_kib():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0

    base = anon_kib()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], anon_kib())
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    tracemalloc.start()
    standardize(mm)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    done.set()
    t.join()
    m = np.asarray(mm[-1], dtype=np.float64)
    print(json.dumps({"nbytes": mm.nbytes, "traced_peak": traced,
                      "rss_anon_growth": (peak[0] - base) * 1024,
                      "last_mean": float(abs(m.mean(axis=(0, 1))).max())}))
    """
)


def test_memory_bound_large_memmap(tmp_path):
    """A 100 MB memmap standardizes with < 1% extra memory (numpy allocations and RssAnon)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(tmp_path / "big.dat")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    r = json.loads(proc.stdout)
    assert r["last_mean"] < 1e-6
    assert r["traced_peak"] < 0.01 * r["nbytes"]
    assert r["rss_anon_growth"] < 0.01 * r["nbytes"] + (2 << 20)


_INT_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import numpy as np
    from stimgen import standardize

    path, shape = sys.argv[1], (32, 512, 512, 3)
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=shape)
    for i in range(shape[0]):
        mm[i] = np.random.default_rng(i).integers(0, 256, shape[1:], dtype=np.uint8)
    mm.flush()
    src = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
    standardize(src[:1])  # first call: imports (Python objects), not data
    tracemalloc.start()
    out = standardize(src)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"in_bytes": src.nbytes, "out_bytes": out.nbytes, "traced_peak": traced,
                      "dtype": str(out.dtype)}))
    """
)


def test_memory_bound_integer_memmap(tmp_path):
    """uint8 -> float32: nothing but the output is allocated (< 1% of the input besides)."""
    proc = subprocess.run(
        [sys.executable, "-c", _INT_MEMORY_SCRIPT, str(tmp_path / "u8.dat")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    r = json.loads(proc.stdout)
    assert r["dtype"] == "float32" and r["out_bytes"] == 4 * r["in_bytes"]
    assert r["traced_peak"] - r["out_bytes"] < 0.01 * r["in_bytes"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"constant": "ignore"}, r"constant must be one of 'zero', 'nan', 'raise'; got 'ignore'"),
        ({"nonfinite": "omit"}, r"nonfinite must be one of"),
        ({"axis": 5}, r"axis 5 is out of range for an array with 4 dimensions"),
        ({"axis": (1, 1)}, r"axis must not repeat an axis"),
        ({"axis": ()}, r"axis must name at least one axis"),
        ({"channel_axis": 4}, r"channel_axis 4 is out of range"),
        ({"ddof": 300}, r"ddof must be smaller than the number of elements per group \(64\)"),
        ({"ddof": -1}, r"ddof must be an integer >= 0"),
        ({"chunk_bytes": 10}, r"chunk_bytes must be an integer >= 1024"),
        ({"mean": [0, 0, 0]}, r"give both mean and std"),
        ({"mean": [0, 0, 0], "std": [1, 0, 1]}, r"std must be > 0"),
        ({"mean": [0, 0], "std": [1, 1]}, r"mean of shape \(2,\) does not broadcast"),
        ({"dtype": np.int16}, r"dtype must be a float dtype"),
        ({"out": np.empty((2, 8, 8))}, r"out must be a float ndarray of shape \(2, 8, 8, 3\)"),
    ],
)
def test_errors(kwargs, match):
    a = np.random.default_rng(0).standard_normal((2, 8, 8, 3))
    with pytest.raises(ValueError, match=match):
        standardize(a, **kwargs)


def test_errors_on_input():
    with pytest.raises(ValueError, match="images must be a real numeric array, got dtype <U1"):
        standardize(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"non-empty array, got shape \(0, 4\)"):
        standardize(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="the default axis needs two spatial axes"):
        standardize(np.zeros((4, 3)))


# -- memory of every path, prime sizes, overflow, given statistics, CLI ------------------
@pytest.mark.parametrize(
    "case",
    ["given", "strided view", "float16", "non-adjacent axes", "given strided", "inplace=False"],
)
def test_scratch_memory_is_a_few_chunks_whatever_the_layout(rng, case):
    """One axis-0 slice (6 MB in float64) is far above chunk_bytes: blocks split axis 1 too."""
    import tracemalloc

    chunk = 256 << 10
    kw: dict = {}
    if case == "strided view":
        a = rng.random((1, 512, 512, 6), dtype=np.float32)[..., ::2]
    elif case == "float16":
        a = rng.random((1, 512, 512, 3)).astype(np.float16)
    else:
        a = rng.random((1, 512, 512, 3), dtype=np.float32)
    if case.startswith("given"):
        kw = {"mean": [0.5, 0.25, 0.0], "std": [2.0, 1.0, 4.0]}
        if case == "given strided":
            a = rng.random((1, 512, 512, 6), dtype=np.float32)[..., ::2]
    if case == "non-adjacent axes":
        kw = {"axis": (1, 3)}
    base = a.astype(np.float64)
    out = np.empty(a.shape, np.float32) if case == "inplace=False" else None
    tracemalloc.start()
    res = standardize(a, chunk_bytes=chunk, out=out, **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * chunk, f"{peak / chunk:.1f} chunks"
    if "mean" in kw:
        ref = (base - np.array(kw["mean"])) / np.array(kw["std"])
        np.testing.assert_allclose(res, ref, rtol=2e-3 if a.dtype == np.float16 else 1e-6,
                                   atol=1e-6)
    else:
        axis = kw.get("axis", (1, 2))
        m, s = base.mean(axis=axis, keepdims=True), base.std(axis=axis, keepdims=True)
        np.testing.assert_allclose(res, (base - m) / s, atol=5e-3 if a.dtype == np.float16
                                   else 1e-5)


def test_row_pixels_accepts_a_larger_divisor_for_prime_sizes():
    from stimgen.standardize import _row_pixels

    assert _row_pixels(1366 * 1366, 3, 4, 2 << 20) == 683  # largest divisor <= 4096 / 3
    assert _row_pixels(1367 * 1367, 3, 4, 2 << 20) == 1367  # no divisor in 2..1366
    assert _row_pixels(13 * 1367, 3, 4, 2 << 20) == 1367
    assert _row_pixels(13 * 1367, 3, 4, 4096) is None  # row too long: generic path


@pytest.mark.parametrize("chunk_bytes", [2 << 20, 4096], ids=["wide rows", "generic"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_prime_sized_images(rng, chunk_bytes, dtype):
    """13 x 1367 pixels (1367 prime): rows of 1367 pixels, or the generic path."""
    shape = (2, 13, 1367, 3)
    if dtype == np.uint8:
        base = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        base = (1e3 + rng.standard_normal(shape)).astype(np.float32)
    out, stats = standardize(base.copy(), chunk_bytes=chunk_bytes, return_stats=True)
    mean, std = _truth(base, (1, 2))
    _check_stats(stats, mean, std)
    _check_unit(out, (1, 2))
    ref = (base.astype(np.float64) - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(out, ref, atol=2e-5)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_float32_with_huge_std_is_exact_and_float64_overflow_raises(rng, layout):
    base = rng.standard_normal((2, 40, 30, 3)) * 1e20
    a = np.asarray(base.astype(np.float32), order=layout)
    mean, std = _truth(a, (1, 2))
    out, stats = standardize(a, return_stats=True)
    np.testing.assert_allclose(stats.std, std, rtol=1e-6)
    assert np.isfinite(out).all()
    _check_unit(out, (1, 2))
    # float64 squares of 1e160 overflow: those groups are recomputed scaled, exactly
    big = np.asarray(base * 1e140, order=layout)
    out, stats = standardize(big.copy(order="A"), return_stats=True)
    np.testing.assert_allclose(stats.std, std * 1e140, rtol=1e-6)
    _check_unit(out, (1, 2))
    # a sum beyond float64 cannot be formed: refused, not reported as NaN input
    huge = np.asarray(np.abs(base) * 1e287 + 1e307, order=layout)
    with pytest.raises(ValueError, match=r"too large to standardize in group \(0, 0\)"):
        standardize(huge)


def test_given_statistics_are_returned_in_the_computed_layout(rng):
    x = rng.random((4, 6, 5, 3))
    _, computed = standardize(x.copy(), return_stats=True)
    _, given = standardize(x.copy(), mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.4],
                           return_stats=True)
    assert given.mean.shape == given.std.shape == computed.mean.shape == (4, 3)
    np.testing.assert_array_equal(given.mean, np.tile([0.5, 0.4, 0.3], (4, 1)))
    np.testing.assert_array_equal(given.std[2], [0.2, 0.3, 0.4])
    _, cf = standardize(np.moveaxis(x, -1, 1).copy(), channel_axis=1, mean=0.5, std=2.0,
                        return_stats=True)
    np.testing.assert_array_equal(cf.mean, np.full((4, 3), 0.5))
    _, img = standardize(x.copy(), mean=np.zeros((6, 5, 1)), std=1.0, return_stats=True)
    assert img.mean.shape == (1, 6, 5, 1)  # varies along a reduced axis: as given
    assert img.std.shape == (4, 3)


def test_cli_stats_dask_without_address_names_the_flag(tmp_path, capsys, monkeypatch):
    from stimgen.cli import main

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert main(["stats", str(tmp_path), "--scheduler", "dask"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "--address HOST:PORT" in err and "address='" not in err


# -- threads: the same bits for any number of workers, bounded memory, ordered errors --------
def _threaded_case(rng, case):
    """(input, kwargs, reduced axes) for one layout/dtype; many blocks with 64 KiB chunks."""
    kw: dict = {"chunk_bytes": 64 << 10}
    axis = (1, 2)
    if case == "float32 big groups":
        a = (1000 + 0.01 * rng.standard_normal((7, 96, 80, 3))).astype(np.float32)
    elif case == "float32 small groups":
        a = (50 + rng.standard_normal((40, 16, 16, 3))).astype(np.float32)
    elif case == "float64":
        a = 1e4 + rng.random((9, 64, 72, 2))
    elif case == "uint8":
        a = rng.integers(0, 256, (11, 70, 64, 3), dtype=np.uint8)
    elif case == "uint16":
        a = rng.integers(0, 65536, (5, 130, 64, 3), dtype=np.uint16)
    elif case == "channel-first":
        a = rng.standard_normal((6, 3, 90, 64)).astype(np.float32)
        kw["channel_axis"] = 1
        axis = (2, 3)
    elif case == "given":
        a = rng.random((8, 64, 64, 3), dtype=np.float32)
        kw.update(mean=[0.5, 0.4, 0.3], std=[0.29, 0.3, 0.31])
    else:  # a constant image-channel among the others (set to 0, one warning)
        a = rng.standard_normal((10, 64, 64, 3)).astype(np.float32)
        a[4, ..., 1] = 7.0
    return a, kw, axis


@pytest.mark.parametrize(
    "case",
    ["float32 big groups", "float32 small groups", "float64", "uint8", "uint16",
     "channel-first", "given", "constant"],
)
def test_any_number_of_threads_gives_the_same_bits(rng, case):
    a, kw, axis = _threaded_case(rng, case)
    results = []
    for workers in (1, 2, 3, -1):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, stats = standardize(a.copy(), workers=workers, return_stats=True, **kw)
        results.append((out, stats, [str(w.message) for w in caught]))
    ref, ref_stats, ref_warnings = results[0]
    for out, stats, caught in results[1:]:
        assert np.array_equal(out, ref)
        assert np.array_equal(stats.mean, ref_stats.mean)
        assert np.array_equal(stats.std, ref_stats.std)
        assert caught == ref_warnings
    if case == "constant":
        assert len(ref_warnings) == 1 and "1 of 30 image-channels are constant" in ref_warnings[0]
        assert (ref[4, ..., 1] == 0).all()
        keep = np.ones(ref.shape[::3], bool)
        keep[4, 1] = False
        o = ref.astype(np.float64)
        assert np.abs(o.mean(axis=axis)[keep]).max() < 1e-6
        assert np.abs(o.std(axis=axis)[keep] - 1).max() < 1e-6
    elif case == "given":
        m, s = np.array(kw["mean"]), np.array(kw["std"])
        np.testing.assert_allclose(ref, (a.astype(np.float64) - m) / s, rtol=1e-6, atol=1e-6)
    else:
        _check_unit(ref, axis, tol=1e-6 if a.dtype != np.float64 else 1e-12)
        mean, std = _truth(a, axis)
        if a.dtype.kind in "iu":  # exact integer statistics
            np.testing.assert_allclose(ref_stats.mean, mean, rtol=1e-15)
            np.testing.assert_allclose(ref_stats.std, std, rtol=1e-14)
        else:
            _check_stats(ref_stats, mean, std, a.dtype)


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("what", ["nonfinite", "constant"])
def test_threads_raise_the_error_of_the_first_offending_group(rng, workers, what):
    a = (100 + rng.standard_normal((24, 32, 32, 3))).astype(np.float32)
    if what == "nonfinite":
        a[9, 3, 4, 2] = np.nan
        a[17, 0, 0, 0] = np.inf
        match, kw = r"NaN or infinite values in group \(9, 2\)", {}
    else:
        a[9, ..., 1] = 5.0
        a[20, ..., 0] = 5.0
        match, kw = r"constant group \(std 0\) in group \(9, 1\)", {"constant": "raise"}
    for _ in range(3):  # whatever thread gets there first
        with pytest.raises(ValueError, match=match):
            standardize(a.copy(), workers=workers, chunk_bytes=16 << 10, **kw)
    b = a.copy()
    with pytest.raises(ValueError, match=match):
        standardize(b, workers=workers, chunk_bytes=16 << 10, **kw)
    # groups before the offending one are standardized (on one thread, none after it); the
    # offending image is as given (its shift, added back, is exact for data near its mean)
    _check_unit(b[:9], (1, 2))
    np.testing.assert_array_equal(b[9], a[9])
    if workers == 1:
        assert np.array_equal(b[10:], a[10:])


@pytest.mark.parametrize("workers", [0, 1.5, True, "2"])
def test_workers_must_be_a_nonzero_integer(workers):
    with pytest.raises(ValueError, match=r"workers must be a non-zero integer"):
        standardize(np.ones((2, 8, 8, 3), np.float32), workers=workers)


def test_scratch_memory_grows_with_threads_only_by_their_blocks(rng):
    """Each thread holds at most a chunk or two: 4 threads on 256 KiB chunks stay below 10
    chunks (the float64 blocks of given statistics are the largest scratch)."""
    import tracemalloc

    chunk = 256 << 10
    a = rng.random((8, 256, 256, 3), dtype=np.float32)
    for kw in ({}, {"mean": [0.5, 0.5, 0.5], "std": [0.3, 0.3, 0.3]}):
        standardize(a[:1].copy(), workers=4, chunk_bytes=chunk, **kw)  # warm up
        tracemalloc.start()
        standardize(a, workers=4, chunk_bytes=chunk, **kw)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 10 * chunk, f"{peak / chunk:.1f} chunks with {kw}"


# -- the float path's shift: a sample of rows, redone when it lies far from the mean ---------
@pytest.mark.parametrize("offset", [5.0, 500.0])
def test_a_sample_far_from_the_mean_is_redone_to_full_precision(rng, offset):
    """The shift is the mean of 8 rows spread over each image (every 32nd of the 256 rows
    of 1024 pixels of a 512 x 512 image); here those rows sit ``offset`` (100 to 10^4 noise
    stds) above the rest, so the first shift lies 5.5 stds or more from the mean. The
    groups are shifted again and summed again: the stats keep float32 partial-sum
    precision (without the second shift the std is off by 2e-7 to 5e-7)."""
    a = (1000 + 0.05 * rng.standard_normal((2, 512, 512, 3))).astype(np.float32)
    a.reshape(2, 256, 3072)[:, ::32] += np.float32(offset)
    mean, std = _truth(a, (1, 2))
    results = []
    for workers, constant in ((1, "zero"), (2, "zero"), (1, "raise")):
        out, stats = standardize(a.copy(), workers=workers, constant=constant,
                                 return_stats=True)
        np.testing.assert_allclose(stats.std, std, rtol=5e-8)
        np.testing.assert_allclose(stats.mean, mean, rtol=0, atol=5e-8 * std.max())
        _check_unit(out, (1, 2), tol=1e-7)
        results.append((out, stats))
    assert np.array_equal(results[0][0], results[1][0])  # the same bits on two threads
    assert np.array_equal(results[0][1].std, results[1][1].std)


def test_nonfinite_error_adds_the_shift_back(rng):
    """The float path subtracts a per-group shift in place before it sees a NaN; the error
    adds it back: exact for data within a factor 2 of the shift, otherwise within one
    rounding of ``x - shift``; a group with a NaN in its sampled rows is not shifted."""
    near = (100 + rng.standard_normal((3, 64, 64, 3))).astype(np.float32)
    centred = rng.standard_normal((3, 64, 64, 3)).astype(np.float32)
    for a, exact in ((near, True), (centred, False)):
        for where in ((1, 5, 7, 2), (1, 0, 0, 2)):  # outside, inside the sampled rows
            b = a.copy()
            b[where] = np.nan
            c = b.copy()
            with pytest.raises(ValueError, match=r"NaN or infinite values in group \(1, 2\)"):
                standardize(c, workers=1, chunk_bytes=64 * 64 * 3 * 4)  # a block per image
            _check_unit(c[:1], (1, 2))
            np.testing.assert_array_equal(c[2], b[2])
            if exact:
                np.testing.assert_array_equal(c[1], b[1])
                continue
            if where == (1, 0, 0, 2):
                np.testing.assert_array_equal(c[1, ..., 2], b[1, ..., 2])
            err = np.abs(c[1].astype(np.float64) - b[1])
            assert np.isnan(c[where]) and np.nanmax(err) > 0  # some values moved
            assert np.nanmax(err) <= 2 * np.finfo(np.float32).eps * np.nanmax(np.abs(b[1]))


def test_float32_offset_near_float32_max_is_summed_from_a_scratch_copy(rng):
    """|shift| >= 2**102 could make ``x - shift`` overflow: such blocks are not shifted in
    place; their deviations go to scratch (and an error leaves the data untouched)."""
    a = (1e35 + 1e30 * rng.standard_normal((2, 40, 30, 3))).astype(np.float32)
    mean, std = _truth(a, (1, 2))
    out, stats = standardize(a.copy(), return_stats=True)
    np.testing.assert_allclose(stats.std, std, rtol=2e-7)
    np.testing.assert_allclose(stats.mean, mean, rtol=0, atol=2e-7 * std.max())
    _check_unit(out, (1, 2))
    b = a.copy()
    b[1, 3, 3, 1] = np.inf
    c = b.copy()
    with pytest.raises(ValueError, match=r"NaN or infinite values in group \(1, 1\)"):
        standardize(c)
    np.testing.assert_array_equal(c[1], b[1])


def test_float32_run_sums_are_within_their_stated_bound(rng):
    """Column sums of 37 rows (two runs of 16 and a tail of 5) and of their squares: a
    float32 column sum errs by at most 22 * 2**-24 of the sum of |terms| (one more
    rounding for the squares themselves); the overflow fallback is exact float64."""
    from stimgen.standardize import _RUN_ROWS, _add_run_sums

    assert _RUN_ROWS == 16
    d = (rng.standard_normal((3, 37, 50)) * np.exp(rng.uniform(-3, 3, (3, 37, 50))))
    d = d.astype(np.float32)
    s1, s2 = np.zeros((3, 50)), np.zeros((3, 50))
    _add_run_sums(d, s1, s2)
    d64 = d.astype(np.float64)
    u = 2.0**-24
    np.testing.assert_array_less(np.abs(s1 - d64.sum(axis=1)), 22 * u * np.abs(d64).sum(axis=1))
    np.testing.assert_array_less(np.abs(s2 - (d64 * d64).sum(axis=1)),
                                 23 * u * (d64 * d64).sum(axis=1))
    assert np.abs(s2 / (d64 * d64).sum(axis=1) - 1).max() > 0  # float32 sums, not float64
    huge = d * np.float32(1e18)  # squares beyond float32: summed in float64
    h1, h2 = np.zeros((3, 50)), np.zeros((3, 50))
    with np.errstate(over="ignore"):  # (as standardize calls it)
        _add_run_sums(huge, h1, h2)
    h64 = huge.astype(np.float64)
    np.testing.assert_allclose(h2, (h64 * h64).sum(axis=1), rtol=1e-14)


def test_quantized_float32_data_has_no_std_bias(rng):
    """``1000 + 0.05 N(0, 1)`` in float32 lies on a grid of 2**-14: float32 sums of its
    squared deviations over runs of 128 rows came out 6.7e-7 low (std 3.4e-7 low); runs of
    16 rows leave ~1e-9."""
    a = (1000 + 0.05 * rng.standard_normal((2, 512, 512, 3))).astype(np.float32)
    mean, std = _truth(a, (1, 2))
    out, stats = standardize(a.copy(), return_stats=True)
    assert np.abs(stats.std / std - 1).max() < 2e-8
    o = out.astype(np.float64)
    assert np.abs(o.std(axis=(1, 2)) - 1).max() < 1e-7


@pytest.mark.parametrize("shape, kw, nan_at", [((64, 1, 1367), {"channel_axis": None}, (5, 0, 100)),
                                               ((64, 1367, 1, 2), {}, (5, 100, 0, 1))],
                         ids=["gray", "2 channels"])
def test_small_prime_sized_groups_are_summed_by_halving(rng, shape, kw, nan_at):
    """Groups of 1367 pixels (prime: no rows of a few hundred values) stay one row each;
    their sums are pairwise (halves added together), exact to float32 resolution, the
    same on any number of threads, with a NaN group propagated (the other groups keep
    their bits) or named."""
    a = (1e3 + rng.standard_normal(shape)).astype(np.float32)
    axis = (1, 2)
    mean, std = _fsum_stats(a, axis)
    out, stats = standardize(a.copy(), return_stats=True, **kw)
    np.testing.assert_allclose(stats.std, std, rtol=2e-7)
    np.testing.assert_allclose(stats.mean, mean, rtol=0, atol=2e-7 * std.max())
    _check_unit(out, axis)
    assert np.array_equal(standardize(a.copy(), workers=3, **kw), out)
    b = a.copy()
    b[nan_at] = np.nan
    prop = standardize(b.copy(), nonfinite="propagate", **kw)
    group = (5, slice(None), slice(None)) + nan_at[3:]
    assert np.isnan(prop[group]).all()
    keep = ~np.isnan(prop)
    assert keep.sum() == a.size - 1367 and np.array_equal(prop[keep], out[keep])
    with pytest.raises(ValueError, match=r"NaN or infinite values in group \(5"):
        standardize(b, **kw)


@pytest.mark.parametrize("offset, spread, kw", [(1e6, 1.0, {"constant": "raise"}),
                                                (1e15, 1e9, {"constant": "raise"}),
                                                (1e300, 1e294, {})],
                         ids=["1e6 raise", "1e15 raise", "1e300"])
def test_float64_offset_not_shifted_in_place_keeps_the_mean_exact(rng, offset, spread, kw):
    """Blocks that are not shifted in place (``constant="raise"``, or shifts beyond 2**970)
    subtract the mean from the data itself: a float64 mean rounded once (ulp(1e6) / 1 =
    1.2e-10) would move every output value by up to half its ulp, so it is split into a
    high and a low part (output mean ~1e-17, not ~1e-10)."""
    a = offset + spread * rng.standard_normal((3, 40, 30, 2))
    p = 2.0 ** -math.frexp(offset)[1]  # (exact scaling: no squares overflow)
    mean, std = (v / p for v in _fsum_stats(a * p, (1, 2)))
    out, stats = standardize(a.copy(), return_stats=True, **kw)
    np.testing.assert_allclose(stats.std, std, rtol=1e-14)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-15)
    _check_unit(out, (1, 2), tol=1e-14)
    assert np.array_equal(out, standardize(a.copy(), workers=2, **kw))


@pytest.mark.parametrize("sampled", [0.0, 3.3e38], ids=["shift 0", "shift 3.3e38"])
def test_float32_deviations_beyond_float32_max_come_out_finite(sampled):
    """float32 data spanning more than float32's range (-3.3e38 and 3.3e38 in one group):
    ``x - mean`` does not fit float32, but the output does; it must neither come out inf
    nor raise. The sampled rows (every 8th of 64 rows of 256 values) hold 0 (the shift is
    0, in place, and the offset left, the mean ~3e38, is too large for a second shift in
    place) or 3.3e38 (a shift not applied in place; ``x - shift`` overflows float32)."""
    a = np.full((2, 256, 64, 1), 3.3e38, np.float32)
    for r in range(0, 64, 8):
        a[:, 4 * r : 4 * r + 4] = sampled
    a[:, 5] = -3.3e38
    a[1, 6, :10] = 1e37
    mean, std = _fsum_stats(a, (1, 2))
    out, stats = standardize(a.copy(), return_stats=True)
    np.testing.assert_allclose(stats.std, std, rtol=1e-7)
    np.testing.assert_allclose(stats.mean, mean, rtol=0, atol=1e-7 * std.max())
    ref = (a.astype(np.float64) - mean[:, None, None]) / std[:, None, None]
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, rtol=0, atol=4 * np.finfo(np.float32).eps * np.abs(ref).max())
    assert np.array_equal(out, standardize(a.copy(), workers=2))


@pytest.mark.parametrize("layout", ["F", "step"])
def test_float64_offset_generic_path_keeps_the_mean_exact(rng, layout):
    """The generic path (Fortran order, strided views) subtracts its float64 pilot mean and
    the offset from it separately: one rounded float64 mean would move every output value
    of ``1e6 + N(0, 1)`` by up to ulp(1e6) / 2 = 6e-11."""
    a = 1e6 + rng.standard_normal((3, 40, 30, 2))
    if layout == "F":
        x = np.asfortranarray(a)
    else:
        x = np.zeros((3, 40, 60, 2))[:, :, ::2]
        x[...] = a
    mean, std = _fsum_stats(a, (1, 2))
    out, stats = standardize(x, return_stats=True)
    assert out is x
    np.testing.assert_allclose(stats.std, std, rtol=1e-14)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-15)
    _check_unit(out, (1, 2), tol=1e-14)


def _exact_int_values(x: np.ndarray, axis: tuple[int, ...]):
    """Mean and population std of each group of integers (exact Python integer sums), and
    each element's exactly computed standardized value."""
    from fractions import Fraction

    xs = np.moveaxis(x, axis, tuple(range(-len(axis), 0)))
    flat = xs.reshape(*xs.shape[: xs.ndim - len(axis)], -1)
    means, stds = np.empty(flat.shape[:-1]), np.empty(flat.shape[:-1])
    z = np.empty(flat.shape)
    for idx in np.ndindex(*flat.shape[:-1]):
        v = [int(t) for t in flat[idx]]
        m = Fraction(sum(v), len(v))
        var = sum((t - m) ** 2 for t in v) / len(v)
        means[idx], stds[idx] = float(m), math.sqrt(float(var))
        z[idx] = [float((t - m) / Fraction(stds[idx])) for t in v]
    return means, stds, z


@pytest.mark.parametrize("dtype, base, kw", [
    (np.int64, 2**60, {}),
    (np.int64, -(2**62), {"out": "F"}),
    (np.uint64, 2**64 - 2**12, {}),
    (np.int32, 2**30, {"dtype": np.float32}),
    (np.uint32, 2**32 - 2**10, {"dtype": np.float32}),
    (np.uint16, 60000, {"dtype": np.float16}),
], ids=["int64", "int64 out", "uint64", "int32 to float32", "uint32 to float32",
        "uint16 to float16"])
def test_wide_integers_with_an_offset_keep_their_spread(rng, dtype, base, kw):
    """Integers that the output's float type cannot hold exactly (2**60 + 0..99 in
    float64, 2**30 + 0..99 in float32) are standardized from their offset to an integer
    near each group's mean (exact integer arithmetic), not from rounded values: the spread
    must not vanish (a "constant" group) or be quantized. The first element of a group is
    an outlier (the offset is not taken from it alone)."""
    x = (rng.integers(0, 100, (3, 20, 30, 2)) + np.array(base, dtype=object)).astype(dtype)
    x[:, 0, 0] = np.array(base + 1000 if base < 0 else base - 1000, dtype=object).astype(dtype)
    mean, std, z = _exact_int_values(x, (1, 2))
    if kw.get("out") == "F":
        kw = {"out": np.empty(x.shape, order="F")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "constant group" warning
        out, stats = standardize(x, return_stats=True, **kw)
    tol = 4 * float(np.finfo(out.dtype).eps)
    np.testing.assert_allclose(stats.std, std, rtol=max(tol, 1e-14))
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-15)
    got = np.moveaxis(out, (1, 2), (-2, -1)).reshape(z.shape).astype(np.float64)
    np.testing.assert_allclose(got, z, rtol=0, atol=max(tol, 1e-14) * np.abs(z).max())


@pytest.mark.parametrize("workers", [1, 2])
def test_nonfinite_values_are_reported_before_constant_groups_of_their_block(rng, workers):
    """Documented order within a block of groups (here one block of six small images): a
    NaN in group (1, 1) is reported before the constant group (0, 0); the same error on
    any number of threads, and the block is left as given (``constant="raise"``)."""
    a = rng.random((6, 5, 7, 2)).astype(np.float32)
    a[0, ..., 0] = 3.0
    a[1, 2, 2, 1] = np.nan
    b = a.copy()
    with pytest.raises(ValueError, match=r"NaN or infinite values in group \(1, 1\)"):
        standardize(b, constant="raise", workers=workers)
    np.testing.assert_array_equal(b, a)
    a[1, 2, 2, 1] = 0.5
    with pytest.raises(ValueError, match=r"constant group \(std 0\) in group \(0, 0\)"):
        standardize(a, constant="raise", workers=workers)


def test_a_second_shift_is_taken_from_the_data_itself(rng):
    """A group whose sampled rows are unrepresentative is shifted a second time, by its
    mean: from ``x`` itself (x - the first shift is added back first), not from the
    deviations from the first shift (two roundings). An error adds the shifts back
    exactly for values within a factor 2 of both shifts (here every value of group 0,
    shifted by ~3.0 and then ~2.93, with a few values at 1.6..5.6 whose deviations from
    the mean need more bits than (x - 3.0) - 0.07 kept); and the statistics keep the
    precision a representative shift gives (sampled rows at 1, the rest at 4..5, with
    values 1 + j * 2**-23: the mean was off by 1.2e-7 std)."""
    rng = np.random.default_rng(2)  # (with these draws, 3 values moved by an ulp)
    a = (2.9 + 0.05 * rng.random((1, 512, 512, 2))).astype(np.float32)
    for r in range(0, 512, 64):  # the sampled rows (every 16th row of 2048 values)
        a[:, r : r + 4] = (3.0 + 0.05 * rng.random((1, 4, 512, 2))).astype(np.float32)
    a[0, 5, :40] = (1.6 + 4 * rng.random((40, 2))).astype(np.float32)
    b = a.copy()
    b[0, 10, 10, 1] = np.nan
    c = b.copy()
    with pytest.raises(ValueError, match=r"NaN or infinite values in group \(0, 1\)"):
        standardize(c, workers=1)
    np.testing.assert_array_equal(c[..., 0], b[..., 0])

    a = (4 + rng.random((1, 512, 512, 2))).astype(np.float32)
    for r in range(0, 512, 64):
        a[:, r : r + 4] = (1 + rng.integers(0, 64, (1, 4, 512, 2)) * 2.0**-23).astype(np.float32)
    mean, std = _fsum_stats(a, (1, 2))
    out, stats = standardize(a.copy(), return_stats=True)
    assert np.abs(stats.mean - mean).max() < 2e-8 * std.min()
    np.testing.assert_allclose(stats.std, std, rtol=2e-8)
    _check_unit(out, (1, 2), tol=1e-7)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_wide_integers_spanning_their_whole_range(rng, dtype):
    """64-bit integers whose differences reach 2**63 and more (the type's extremes in one
    group): exact differences from the groups' offsets, whatever their sign."""
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (2, 8, 8, 1), dtype=dtype, endpoint=True)
    x[0, ::2] = info.min
    x[0, 1::2] = info.max
    x[1, 0, 0] = info.min
    mean, std, z = _exact_int_values(x, (1, 2))
    out, stats = standardize(x, return_stats=True)
    np.testing.assert_allclose(stats.std, std, rtol=1e-14)
    np.testing.assert_allclose(stats.mean, mean, rtol=0, atol=1e-15 * std.max())
    got = np.moveaxis(out, (1, 2), (-2, -1)).reshape(z.shape)
    np.testing.assert_allclose(got, z, rtol=0, atol=1e-14 * np.abs(z).max())
