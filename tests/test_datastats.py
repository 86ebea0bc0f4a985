"""Tests for stimgen.datastats: exactness, merging, files, parallel and Dask, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stimgen import RunningStats, dataset_stats
from stimgen.cli import main
from stimgen.io import read_image


def _pixels(images, channel_axis=-1):
    """All pixels as a float64 (P, C) array: the ground truth."""
    cols = []
    for im in images:
        a = np.asarray(im, dtype=np.float64)
        if a.ndim == 2:
            a = a[..., None]
        elif channel_axis is not None and channel_axis % a.ndim != a.ndim - 1:
            a = np.moveaxis(a, channel_axis, -1)
        cols.append(a.reshape(-1, a.shape[-1]))
    return np.concatenate(cols)


def _assert_matches(s, pixels, rtol=1e-12):
    np.testing.assert_allclose(s.mean, pixels.mean(axis=0), rtol=rtol)
    np.testing.assert_allclose(s.std, pixels.std(axis=0), rtol=rtol)
    np.testing.assert_allclose(s.min, pixels.min(axis=0), rtol=rtol)
    np.testing.assert_allclose(s.max, pixels.max(axis=0), rtol=rtol)
    assert s.n_pixels == pixels.shape[0]


def _mixed_uint8(rng, n=12, channels=3):
    return [
        rng.integers(0, 256, (int(rng.integers(3, 300)), int(rng.integers(3, 60)), channels),
                     dtype=np.uint8)
        for _ in range(n)
    ]


def test_uint8_mixed_sizes_exact(rng):
    imgs = _mixed_uint8(rng)
    s = dataset_stats(imgs)  # default scale 1/255
    _assert_matches(s, _pixels(imgs) / 255)
    assert s.n_images == 12 and s.skipped == 0


def test_uint16_and_float_offset_data_exact(rng):
    imgs16 = [rng.integers(0, 65536, (40, 31), dtype=np.uint16) for _ in range(3)]
    s = dataset_stats(imgs16, scale=1.0)
    _assert_matches(s, _pixels(imgs16))
    # float32 running sums stop growing past 2**24 (P3); offset data must stay exact
    imgs = [(1e4 + rng.random((50, 40, 3))).astype(np.float32) for _ in range(4)]
    s = dataset_stats(imgs, scale=1.0)
    _assert_matches(s, _pixels(imgs))


def test_channel_first_and_channel_last_batches_agree(rng):
    last = (0.5 + 0.1 * rng.standard_normal((5, 30, 20, 3))).astype(np.float32)
    first = np.moveaxis(last, -1, 1)  # a non-contiguous (B, C, H, W) view
    s_last = dataset_stats([last[:2], last[2:]], scale=1.0)
    s_first = dataset_stats([first[:3], first[3:]], scale=1.0, channel_axis=1)
    _assert_matches(s_last, _pixels(list(last)))
    _assert_matches(s_first, _pixels(list(last)))
    assert s_first.n_images == 5
    gray = rng.random((4, 10, 12))
    s = dataset_stats([gray], channel_axis=None, scale=1.0)  # (B, H, W) grayscale batch
    assert s.n_images == 4 and s.n_channels == 1
    _assert_matches(s, gray.reshape(-1, 1))


def _exact(images, channel_axis=-1):
    """Correctly rounded mean and std per channel from Python-integer sums (ground truth)."""
    px = [np.asarray(im).astype(np.int64) for im in images]
    px = [np.moveaxis(a, channel_axis, -1) if a.ndim == 3 and channel_axis != -1 else a
          for a in px]
    cols = np.concatenate([a.reshape(-1, 1 if a.ndim == 2 else a.shape[-1]) for a in px])
    n = cols.shape[0]
    s1 = [int(v) for v in cols.sum(axis=0)]
    s2 = [int(v) for v in (cols * cols).sum(axis=0)]
    mean = np.array([a / n for a in s1])
    std = np.sqrt([(n * q - a * a) / (n * n) for a, q in zip(s1, s2, strict=True)])
    return mean, std


@pytest.mark.parametrize(
    "dtype, low, high, shapes",
    [
        # tall (> 257 rows: uint32 sums), very tall (> 66,051 rows: int64), wide, tiny
        (np.uint8, 0, 256, [(700, 50, 3), (70_000, 1, 3), (3, 100_000, 3), (1, 1, 3)]),
        (np.uint16, 65000, 65536, [(2000, 3000), (40, 31)]),  # large sums of 16-bit squares
        (np.int8, -128, 128, [(1500, 4, 2), (3, 5, 2)]),
        (np.int16, -32768, 32768, [(50, 40, 2)]),
        (np.bool_, 0, 2, [(30, 20, 3), (5, 5, 3)]),
    ],
)
def test_integer_images_are_exact(rng, dtype, low, high, shapes):
    imgs = [rng.integers(low, high, sh).astype(dtype) for sh in shapes]
    s = dataset_stats(imgs, scale=1.0)
    mean, std = _exact(imgs)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-15, atol=0)
    np.testing.assert_allclose(s.std, std, rtol=1e-14, atol=0)
    lo = min(int(im.min()) for im in imgs)
    assert s.min.min() == lo and s.max.max() == max(int(im.max()) for im in imgs)
    recipe = np.mean([im.reshape(-1, s.n_channels).astype(np.float64).std(axis=0)
                      for im in imgs], axis=0)
    np.testing.assert_allclose(s.mean_of_stds, recipe, rtol=1e-12)


def test_huge_16bit_images_use_python_integers(rng, monkeypatch):
    import importlib

    mod = importlib.import_module("stimgen.datastats")
    imgs = [rng.integers(60000, 65536, (300, 200, 3), dtype=np.uint16),
            rng.integers(0, 65536, (50, 70, 3), dtype=np.uint16)]
    ref = dataset_stats(imgs, scale=1.0)
    monkeypatch.setattr(mod, "_INT64_SUMS", 0)  # as if int64 sums could overflow
    big = dataset_stats(imgs, scale=1.0)
    for name in ("mean", "std", "within_var", "between_var", "mean_of_stds", "min", "max"):
        np.testing.assert_array_equal(getattr(big, name), getattr(ref, name))
    mean, std = _exact(imgs)
    np.testing.assert_allclose(big.std, std, rtol=1e-14)


def test_integer_channel_first_batches_equal_channel_last(rng):
    last = rng.integers(0, 256, (5, 33, 17, 3), dtype=np.uint8)
    first = np.moveaxis(last, -1, 1)
    a = dataset_stats([last[:2], last[2:]], scale=1.0)
    b = dataset_stats([first[:3], first[3:]], scale=1.0, channel_axis=1)
    mean, std = _exact(list(last))
    for s in (a, b):
        np.testing.assert_allclose(s.mean, mean, rtol=1e-15, atol=0)
        np.testing.assert_allclose(s.std, std, rtol=1e-14, atol=0)
        assert s.n_images == 5 and s.n_pixels == 5 * 33 * 17
    for name in ("within_var", "between_var", "mean_of_stds", "mean_of_means", "min", "max"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-14)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 12), max_size=6), tree=st.booleans())
def test_merge_any_split_gives_the_same_result(cuts, tree):
    rng = np.random.default_rng(7)
    imgs = [(100 + rng.standard_normal((h, 7, 2))).astype(np.float32)
            for h in (3, 9, 1, 4, 16, 2, 5, 8, 3, 11, 6, 2)]
    whole = RunningStats()
    for im in imgs:
        whole.update(im)
    bounds = sorted({0, 12, *cuts})
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        r = RunningStats()
        for im in imgs[a:b]:
            r.update(im)
        parts.append(r)
    while len(parts) > 1:  # merge pairwise as a tree, or left to right
        if tree:
            parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        else:
            parts = [parts[0].merge(parts[1]), *parts[2:]]
    merged = parts[0]
    for name in ("mean", "std", "within_var", "between_var", "mean_of_stds", "min", "max"):
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-12)
    assert (merged.count, merged.n_images) == (whole.count, whole.n_images)


def test_mean_of_stds_recipe_differs_and_variances_add(rng):
    # images with different brightness: the between-image variance is most of the total
    imgs = [np.clip(level + 0.05 * rng.standard_normal((20, 20, 3)), 0, 1)
            for level in np.linspace(0.1, 0.9, 9)]
    s = dataset_stats(imgs, scale=1.0)
    _assert_matches(s, _pixels(imgs))
    np.testing.assert_allclose(s.within_var + s.between_var, s.std**2, rtol=1e-12)
    recipe = np.mean([im.reshape(-1, 3).std(axis=0) for im in imgs], axis=0)
    np.testing.assert_allclose(s.mean_of_stds, recipe, rtol=1e-12)
    assert np.all(s.mean_of_stds < 0.25 * s.std)  # the recipe is off by more than -75%
    np.testing.assert_allclose(s.between_var, np.var([im.mean((0, 1)) for im in imgs], axis=0),
                               rtol=1e-12)


def test_constant_images_are_fine(rng):
    s = dataset_stats([np.full((4, 4, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)])
    np.testing.assert_allclose(s.mean, 0.8)
    np.testing.assert_allclose(s.std, 0.4)
    np.testing.assert_allclose(s.within_var, 0.0)


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    t = torch.rand(3, 3, 8, 8)
    s = dataset_stats([t], channel_axis=1, scale=1.0)
    _assert_matches(s, _pixels(list(t.numpy()), channel_axis=0), rtol=1e-6)


# -- files -------------------------------------------------------------------------------
def _write_dataset(folder, rng, n=10):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        h, w = int(rng.integers(8, 40)), int(rng.integers(8, 40))
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fmt = "png" if i % 2 == 0 else "jpg"
        Image.fromarray(arr).save(folder / f"img{i:03d}.{fmt}")
    return sorted(p for p in folder.iterdir())


def test_directory_glob_and_list_sources(tmp_path, rng):
    files = _write_dataset(tmp_path / "data", rng)
    truth = _pixels([read_image(p) for p in files]) / 255
    s = dataset_stats(tmp_path / "data")
    _assert_matches(s, truth)
    assert s.n_images == 10
    s_glob = dataset_stats(str(tmp_path / "data" / "*.png"))
    assert s_glob.n_images == 5
    s_list = dataset_stats([str(f) for f in files])
    np.testing.assert_array_equal(s_list.mean, s.mean)
    out = s.to_dict()
    assert {"mean", "std", "n_images", "n_pixels", "skipped"} <= set(out)
    json.dumps(out)


def test_image_modes_rgba_palette_gray_16bit(tmp_path, rng):
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (10, 12, 1), dtype=np.uint8)
    d = tmp_path / "modes"
    d.mkdir()
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(d / "a_rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(d / "b_pal.png")
    s = dataset_stats(d)  # alpha dropped, palette expanded to RGB
    pal = read_image(d / "b_pal.png")
    assert pal.shape == (10, 12, 3)
    _assert_matches(s, _pixels([rgb, pal]) / 255)
    g = tmp_path / "gray16"
    g.mkdir()
    gray16 = rng.integers(0, 65536, (9, 7), dtype=np.uint16)
    Image.fromarray(gray16).save(g / "g16.png")
    # 16-bit images have no default scale: refused, naming the file and the fix
    with pytest.raises(ValueError, match=r"other than 8-bit \(uint16, e\.g\. .*g16\.png\) need an "
                       r"explicit scale .*1/65535"):
        dataset_stats(g)
    s16 = dataset_stats(g, scale=1 / 65535)
    _assert_matches(s16, gray16.reshape(-1, 1) / 65535)
    assert s16.dtypes == ("uint16",)


def test_files_min_max_late_extremes_and_mixed_bit_depths(tmp_path, rng):
    d = tmp_path / "late"
    d.mkdir()
    imgs = [rng.integers(10, 200, (20 + i, 30, 3), dtype=np.uint8) for i in range(5)]
    last = rng.integers(10, 200, (9, 9, 3), dtype=np.uint8)
    last[0, 0] = (0, 255, 3)  # extremes only in the last file, one channel each
    imgs.append(last)
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(d / f"im{i}.png")
    s = dataset_stats(d, scale=1.0)
    assert s.min.tolist() == [0, 10, 3] and s.max.tolist() == [199, 255, 199]
    mean, std = _exact(imgs)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-15)
    np.testing.assert_allclose(s.std, std, rtol=1e-14)
    # partitions in the same worker start from the min/max found before: still exact
    for _ in range(2):
        par = dataset_stats(d, scale=1.0, jobs=2, files_per_task=2)
        assert par.min.tolist() == s.min.tolist() and par.max.tolist() == s.max.tolist()
    sub = dataset_stats(sorted(d.iterdir())[:5], scale=1.0)  # another call: its own range
    assert sub.min.tolist() == [10, 10, 10] and sub.max.tolist() == [199, 199, 199]
    # 8- and 16-bit grayscale files in one folder: both are summed exactly
    g = tmp_path / "gray"
    g.mkdir()
    g8 = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (7, 9), dtype=np.uint16)
    Image.fromarray(g8).save(g / "a8.png")
    Image.fromarray(g16).save(g / "b16.png")
    s = dataset_stats(g, scale=1.0)
    mean, std = _exact([g8, g16])
    np.testing.assert_allclose(s.mean, mean, rtol=1e-15)
    np.testing.assert_allclose(s.std, std, rtol=1e-14)
    assert s.dtypes == ("uint16", "uint8") and s.n_images == 2


def test_corrupt_file_raises_or_is_skipped(tmp_path, rng):
    _write_dataset(tmp_path / "data", rng, n=4)
    bad = tmp_path / "data" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"broken\.png"):
        dataset_stats(tmp_path / "data")
    with pytest.warns(RuntimeWarning, match=r"skipped 1 file\(s\) \(unreadable.*broken\.png"):
        s = dataset_stats(tmp_path / "data", on_error="skip")
    assert s.skipped == 1 and s.n_images == 4
    assert s.skipped_files[0][0].endswith("broken.png")


def test_mixed_channel_counts_name_the_file(tmp_path, rng):
    d = tmp_path / "mixed"
    d.mkdir()
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(d / "a.png")
    Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)).save(d / "b.png")
    with pytest.raises(ValueError, match=r"b\.png has 1 channel\(s\) but the dataset's first image has 3"):
        dataset_stats(d)


def test_channel_mismatch_outcome_does_not_depend_on_partitioning(tmp_path, rng):
    # the first readable file fixes the channel count for every task: the odd grayscale
    # file is the one skipped (and named), however the list is split
    d = tmp_path / "mixed"
    d.mkdir()
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(d / f"a{i}.png")
    Image.fromarray(rng.integers(0, 256, (6, 7), dtype=np.uint8)).save(d / "a4x_gray.png")
    results = []
    for kw in ({}, {"jobs": 2, "files_per_task": 1}, {"jobs": 2, "files_per_task": 4}):
        with pytest.warns(RuntimeWarning, match=r"skipped 1 file.*a4x_gray\.png has 1 channel"):
            results.append(dataset_stats(d, on_error="skip", **kw))
    for r in results:
        assert r.n_images == 9 and r.skipped == 1
        np.testing.assert_allclose(r.mean, results[0].mean, rtol=1e-12)


def test_parallel_jobs_equal_sequential(tmp_path, rng):
    _write_dataset(tmp_path / "data", rng, n=12)
    seq = dataset_stats(tmp_path / "data")
    par = dataset_stats(tmp_path / "data", jobs=2, files_per_task=3)
    for name in ("mean", "std", "within_var", "between_var", "mean_of_stds"):
        np.testing.assert_allclose(getattr(par, name), getattr(seq, name), rtol=1e-12, atol=0)
    assert (par.n_images, par.n_pixels) == (seq.n_images, seq.n_pixels)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:distributed")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_dask_equals_local(tmp_path, rng):
    distributed = pytest.importorskip("dask.distributed")
    files = _write_dataset(tmp_path / "data", rng, n=12)
    bad = tmp_path / "data" / "zz_broken.jpg"
    bad.write_bytes(b"garbage")
    local = dataset_stats(files)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        remote = dataset_stats(files, scheduler="dask", address=cluster.scheduler_address,
                               files_per_task=4)
        with pytest.raises(ValueError, match=r"zz_broken\.jpg"):
            dataset_stats([*files, bad], scheduler="dask", address=cluster.scheduler_address)
    for name in ("mean", "std", "within_var", "between_var", "mean_of_stds", "min", "max"):
        np.testing.assert_allclose(getattr(remote, name), getattr(local, name), rtol=1e-12)
    assert (remote.n_images, remote.n_pixels) == (local.n_images, local.n_pixels)


# -- CLI -------------------------------------------------------------------------------------
def test_cli_json(tmp_path, rng, capsys):
    _write_dataset(tmp_path / "data", rng, n=4)
    assert main(["stats", str(tmp_path / "data"), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    s = dataset_stats(tmp_path / "data")
    np.testing.assert_allclose(out["mean"], s.mean, rtol=1e-15)
    assert out["n_images"] == 4 and out["skipped"] == 0 and out["n_pixels"] == s.n_pixels


def test_cli_text_and_errors(tmp_path, rng, capsys):
    _write_dataset(tmp_path / "data", rng, n=2)
    assert main(["stats", str(tmp_path / "data"), "--no-progress"]) == 0
    assert "mean of stds" in capsys.readouterr().out
    (tmp_path / "data" / "bad.png").write_bytes(b"nope")
    assert main(["stats", str(tmp_path / "data"), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stimgen stats: error:") and "bad.png" in err
    assert err.count("\n") == 1
    assert main(["stats", str(tmp_path / "data"), "--json", "--skip-errors"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["skipped"] == 1 and "bad.png" in captured.err
    assert main(["stats", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scheduler": "spark"}, r"scheduler must be one of 'local', 'dask'; got 'spark'"),
        ({"on_error": "ignore"}, r"on_error must be one of 'raise', 'skip'"),
        ({"scale": 0}, r"scale must be finite and > 0, got 0"),
        ({"jobs": 0}, r"jobs must be an integer >= 1, got 0"),
        ({"jobs": 2}, r"jobs and scheduler='dask' apply to file sources"),
    ],
)
def test_dataset_stats_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dataset_stats([np.zeros((2, 2, 3))], **kwargs)


def test_source_and_update_errors(tmp_path):
    with pytest.raises(ValueError, match="no image files found"):
        dataset_stats(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        dataset_stats(tmp_path / "nope")
    with pytest.raises(ValueError, match="source is a single array"):
        dataset_stats(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="source is an empty list"):
        dataset_stats([])
    r = RunningStats()
    with pytest.raises(ValueError, match=r"batch must have 2, 3 or 4 dimensions, got shape \(5,\)"):
        r.update(np.zeros(5))
    with pytest.raises(ValueError, match="channel_axis must not be axis 0"):
        r.update(np.zeros((2, 3, 4, 4)), channel_axis=0)
    with pytest.raises(ValueError, match="batch contains NaN or infinite values"):
        r.update(np.full((2, 2), np.nan))
    r.update(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="cannot merge images with 1 channels into statistics of 3"):
        r.update(np.zeros((2, 2)))


def test_mixing_float_arrays_and_integer_images_is_refused(tmp_path, rng):
    d = tmp_path / "set"
    d.mkdir()
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    np.save(d / "a.npy", a)
    Image.fromarray(b).save(d / "b.png")
    with pytest.raises(ValueError, match=r"mixes float arrays \(float32, e\.g\. .*a\.npy\) and "
                       r"integer images \(uint8, e\.g\. .*b\.png\).*give scale"):
        dataset_stats(d)
    # an explicit scale is a policy: it multiplies every file
    s = dataset_stats(d, scale=0.5)
    both = np.concatenate([a.ravel().astype(np.float64), b.ravel().astype(np.float64)]) * 0.5
    np.testing.assert_allclose(s.mean, [both.mean()], rtol=1e-12)
    np.testing.assert_allclose(s.std, [both.std()], rtol=1e-12)
    assert s.scale == 0.5 and s.scale_source == "given"


def test_cli_scale_accepts_fractions(tmp_path, rng, capsys):
    from stimgen.cli import main

    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "a.png")
    assert main(["stats", str(tmp_path), "--scale", "1/255", "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["mean"][0] <= 1


# -- throughput work: uint16 bands, the summing thread, processes (exactness) ----------------
def _write_typed_dataset(folder, rng, kind):
    """Files of mixed sizes (tall ones above 257 and 514 rows: several uint16 bands), and the
    float64 pixels they hold (scale 1)."""
    shapes = [(9, 11), (300, 40), (257, 33), (258, 9), (600, 21), (64, 64), (31, 390)]
    arrays = []
    for i, (h, w) in enumerate(shapes):
        if kind == "uint8":
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(a).save(folder / f"im{i}.png")
        elif kind == "uint16":
            a = rng.integers(0, 65536, (h, w), dtype=np.uint16)
            Image.fromarray(a).save(folder / f"im{i}.png")
        else:
            a = (1e3 + rng.standard_normal((h, w, 3))).astype(np.float32)
            np.save(folder / f"im{i}.npy", a)
        arrays.append(a)
    return arrays


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_files_equal_a_float64_reference_with_1_and_2_processes(tmp_path, rng, kind, jobs):
    arrays = _write_typed_dataset(tmp_path, rng, kind)
    s = dataset_stats(tmp_path, jobs=jobs, scale=1.0, files_per_task=2)
    _assert_matches(s, _pixels(arrays))
    assert s.n_images == len(arrays)


def test_uint16_bands_equal_the_einsum_sums_bit_for_bit(rng):
    """The uint8 (and bool) path through uint16 bands gives the same exact integer sums as
    the uint8 -> uint32 einsum, for 1 band, several bands and a band of one row."""
    from stimgen.datastats import _IntegerSums

    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            for h, w in [(1, 5), (257, 3), (258, 4), (515, 6), (40, 1000)]]
    imgs.append(np.full((300, 7, 3), 255, np.uint8))  # the largest sums
    for dtype in (np.uint8, np.bool_):
        results = []
        for narrow in (True, False):
            acc = _IntegerSums(np.dtype(dtype), 3)
            acc.narrow = narrow
            for im in imgs:
                x = im.astype(dtype)
                acc.add(x[None])
            results.append(acc)
        a, b = results
        assert np.array_equal(a.col1[: a.used], b.col1[: b.used])
        assert np.array_equal(a.col2[: a.used], b.col2[: b.used])
        ra, rb = a.running(1.0), b.running(1.0)
        assert np.array_equal(ra.mean, rb.mean) and np.array_equal(ra.m2, rb.m2)
    s = dataset_stats(imgs, scale=1.0)
    _assert_matches(s, _pixels(imgs))


def _mode_files(tmp_path, rng):
    """One file of every 8-bit layout read_image returns as uint8, plus .npy and 16-bit
    files in the same folder (these go through the array path)."""
    files = {}
    a = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    a[0, 0] = 0
    a[1, 1] = 255
    files["rgb.png"] = Image.fromarray(a[..., :3])
    files["rgba.png"] = Image.fromarray(a)
    files["gray.png"] = Image.fromarray(a[..., 0])
    files["la.png"] = Image.fromarray(a[..., 0]).convert("LA")
    files["rgb.jpg"] = Image.fromarray(a[..., :3])
    files["bilevel.png"] = Image.fromarray(a[..., 0] > 127)
    pal = Image.fromarray(a[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=17)
    files["palette.png"] = pal
    for name, im in files.items():
        im.save(tmp_path / name)
    Image.fromarray(rng.integers(0, 16, (20, 30), dtype=np.uint8)).convert("P").save(
        tmp_path / "pal4.png", bits=4)
    np.save(tmp_path / "arr.npy", rng.integers(0, 256, (19, 23, 3), dtype=np.uint8))
    return sorted(tmp_path.iterdir())


def test_band_counts_equal_the_counts_of_read_image(tmp_path, rng):
    from stimgen.io import BandCounts, read_band_counts

    counted = 0
    for p in _mode_files(tmp_path, rng):
        for keep_alpha in (False, True):
            arr = read_image(p, keep_alpha=keep_alpha)
            got = read_band_counts(p, keep_alpha=keep_alpha)
            if isinstance(got, np.ndarray):  # not counted: exactly read_image's array
                assert p.suffix == ".npy" or arr.dtype != np.uint8
                np.testing.assert_array_equal(got, arr)
                continue
            counted += 1
            assert isinstance(got, BandCounts) and arr.dtype == np.uint8
            assert got.shape == arr.shape, p.name
            chans = arr.reshape(arr.shape[0], arr.shape[1], -1)
            want = np.stack([np.bincount(chans[..., c].ravel(), minlength=256)
                             for c in range(chans.shape[2])])
            np.testing.assert_array_equal(got.counts, want, err_msg=p.name)
    assert counted >= 14  # every image layout above was counted, with and without alpha


def test_counted_files_give_the_array_paths_statistics_bit_for_bit(tmp_path, rng, monkeypatch):
    """8-bit files counted by the decoder give exactly the statistics of their arrays
    summed in columns (the path every file took before), also mixed with .npy arrays."""
    import stimgen.datastats as ds

    for p in _mode_files(tmp_path, rng):
        if p.name in ("gray.png", "la.png", "bilevel.png", "pal4.png"):
            p.unlink()  # keep one channel count (3) in the folder
    got = dataset_stats(tmp_path, jobs=1).to_dict()
    monkeypatch.setattr(ds, "read_band_counts", read_image)
    want = dataset_stats(tmp_path, jobs=1).to_dict()
    assert got == want
    assert got["n_images"] == 5 and got["min"] == [0.0] * 3 and got["max"] == [1.0] * 3
