"""Reading images without rescaling, PNG/GIF encoding, atomic outputs and safe --force."""

import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from stimgen.io import atomic_directory, gif_bytes, png_bytes, read_image


def test_modes_are_read_as_stored(tmp_path, rng):
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])  # alpha dropped
    assert read_image(tmp_path / "a.png", keep_alpha=True).shape == (6, 5, 4)
    g16 = rng.integers(0, 65536, (4, 7), dtype=np.uint16)
    (tmp_path / "g.png").write_bytes(png_bytes(g16))
    out = read_image(tmp_path / "g.png")
    assert out.dtype == np.uint16 and np.array_equal(out, g16)  # never rescaled
    pal = Image.fromarray(rng.integers(0, 4, (3, 3), dtype=np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    pal.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (3, 3, 3)


def test_undecodable_and_oversized_images_are_value_errors(tmp_path, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode image .*bad\.png"):
        read_image(tmp_path / "bad.png")
    Image.new("L", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a decompression bomb, in small
    with pytest.raises(ValueError, match=r"cannot decode image .*big\.png"):
        read_image(tmp_path / "big.png")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_gif_bytes_round_trip():
    movie = np.stack([np.full((4, 4), v, np.uint8) for v in (0, 128, 255)])
    data, ms = gif_bytes(movie, fps=60)
    assert ms == 20 and data[:6] == b"GIF89a"
    with pytest.raises(ValueError, match="GIF output needs uint8 data"):
        gif_bytes(movie.astype(float), fps=60)


def test_atomic_directory_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "set"
    with pytest.raises(RuntimeError), atomic_directory(out) as tmp:
        (tmp / "x").write_text("half")
        raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _manifest(files):
    return json.dumps({"manifest_version": 1, "experiment": {}, "figures": [],
                       "stimuli": [{"index": i, "files": [{"file": f, "sha256": "0"}]}
                                   for i, f in enumerate(files)]})


def test_force_replaces_only_stimgen_outputs(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no stimgen output"), \
            atomic_directory(project, force=True):
        pass
    assert (project / "notes.txt").read_text() == "keep me"
    afile = tmp_path / "afile"
    afile.write_text("data")
    with pytest.raises(FileExistsError, match="is a regular file, not a directory"), \
            atomic_directory(afile, force=True):
        pass
    monkeypatch.chdir(project)
    with pytest.raises(FileExistsError, match="current directory or one of its parents"), \
            atomic_directory(tmp_path, force=True):
        pass
    old = tmp_path / "old_set"
    (old / "stimuli").mkdir(parents=True)
    (old / "manifest.json").write_text(_manifest(["stimuli/a.npy"]))
    (old / "stimuli" / "a.npy").write_text("old")
    (old / "figures").mkdir()
    (old / "figures" / "spectrum_c0.png").write_text("fig")  # stimgen's own figures
    with atomic_directory(old, force=True) as tmp:
        (tmp / "manifest.json").write_text('{"new": 1}')
    assert (old / "manifest.json").read_text() == '{"new": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "old_set", "project"]
    assert os.path.isdir(project)


def test_force_refuses_a_name_alone_and_api_messages_say_force_true(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text("{}")  # a name, not a stimgen manifest
    (fake / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match=r"manifest\.json is not a stimgen manifest"), \
            atomic_directory(fake, force=True):
        pass
    with pytest.raises(FileExistsError, match=r"already exists \(pass force=True") as info, \
            atomic_directory(fake):
        pass
    assert "--force" not in str(info.value) and "--force" in info.value.cli_message
    assert (fake / "thesis.tex").read_text() == "precious"


def test_unwritable_output_names_it(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OSError, match=r"cannot write the output .*sub: its parent .*afile is not a directory"):
        with atomic_directory(afile / "sub"):
            pass


# -- exact reading of every PNG colour type and bit depth ----------------------------------
# An independent minimal PNG writer (zlib + the five row filters + Adam7), so that the
# reader is checked against known samples rather than against itself.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _scanlines(s, bits, row0=0):
    """Filtered scanlines of samples ``s`` (H, W, C): filter type cycles 0..4 by row."""
    out = bytearray()
    bpp = max(1, s.shape[2] * bits // 8)
    prev = None
    for y, row in enumerate(s):
        vals = [int(v) for v in row.reshape(-1)]
        if bits >= 8:
            raw = b"".join(v.to_bytes(bits // 8, "big") for v in vals)
        else:
            acc = "".join(format(v, f"0{bits}b") for v in vals)
            acc += "0" * (-len(acc) % 8)
            raw = bytes(int(acc[i:i + 8], 2) for i in range(0, len(acc), 8))
        prev = bytes(len(raw)) if prev is None else prev
        f = (y + row0) % 5
        line = bytearray()
        for i, x in enumerate(raw):
            a = raw[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            pred = (0, a, prev[i], (a + prev[i]) // 2, _paeth(a, prev[i], c))[f]
            line.append((x - pred) & 255)
        out += bytes([f]) + line
        prev = raw
    return bytes(out)


def png_encode(samples, bits, ctype, *, palette=None, trns=None, interlace=False):
    s = np.asarray(samples)
    s = s.reshape(s.shape[0], s.shape[1], -1)
    h, w = s.shape[:2]
    if interlace:
        data = b"".join(_scanlines(s[y0::dy, x0::dx], bits) for x0, y0, dx, dy in _ADAM7
                        if s[y0::dy, x0::dx].size)
    else:
        data = _scanlines(s, bits)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0,
                                                               int(interlace)))
    if palette is not None:
        png += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).ravel()))
    if trns is not None:
        png += _chunk(b"tRNS", trns)
    return png + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize(
    ("ctype", "bits"),
    [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8),
     (4, 8), (4, 16), (6, 8), (6, 16)],
)
def test_every_png_colour_type_and_depth_is_read_exactly(tmp_path, rng, ctype, bits, interlace):
    h, w = 11, 13  # odd sizes: partial bytes at low depths, every Adam7 pass non-trivial
    samples = rng.integers(0, 2**bits, (h, w, CHANNELS[ctype]))
    samples.flat[:4] = [0, 2**bits - 1, 1, 2**bits - 2][: samples.size]  # the extremes
    palette = rng.integers(0, 256, (2**bits, 3)) if ctype == 3 else None
    path = tmp_path / "x.png"
    path.write_bytes(png_encode(samples, bits, ctype, palette=palette, interlace=interlace))
    got = read_image(path, keep_alpha=True)
    if ctype == 3:
        want = palette[samples[..., 0]]
    elif bits < 8:  # the PNG specification's exact full-scale mapping to 8 bits
        want = samples[..., 0] * (255 // (2**bits - 1))
    else:
        want = samples if samples.shape[2] > 1 else samples[..., 0]
    assert got.dtype == (np.uint16 if bits == 16 else np.uint8)
    assert got.shape == want.shape and np.array_equal(got, want)
    dropped = read_image(path)  # alpha dropped by default: the colour samples remain
    if ctype in (4, 6):
        assert np.array_equal(dropped, want[..., :-1] if ctype == 6 else want[..., 0])


def test_sixteen_bit_rgb_from_the_audit(tmp_path):
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_encode(np.full((4, 4, 3), 40000), 16, 2))
    a = read_image(path)
    assert a.dtype == np.uint16 and a.max() == 40000 and a.shape == (4, 4, 3)


def test_palette_transparency_is_an_alpha_channel(tmp_path):
    idx = np.array([[0, 1], [2, 1]])
    pal = [[10, 20, 30], [40, 50, 60], [70, 80, 90]]
    path = tmp_path / "p.png"
    path.write_bytes(png_encode(idx, 8, 3, palette=pal, trns=bytes([0, 128])))
    rgba = read_image(path, keep_alpha=True)
    assert rgba.shape == (2, 2, 4) and rgba[0, 0].tolist() == [10, 20, 30, 0]
    assert rgba[0, 1, 3] == 128 and rgba[1, 0, 3] == 255  # entries past tRNS are opaque
    assert np.array_equal(read_image(path), rgba[..., :3])


# -- TIFF -------------------------------------------------------------------------------------
def tiff_encode(samples, bits, *, order="<", deflate=False, extra=None, planar=False, kind="u"):
    """A minimal baseline TIFF writer: one strip (one per plane if planar), optional deflate."""
    s = np.asarray(samples)
    s = s.reshape(s.shape[0], s.shape[1], -1)
    h, w, ch = s.shape
    a = np.ascontiguousarray(s.astype(f"{order}{kind}{bits // 8}"))
    planes = [a[..., c] for c in range(ch)] if planar else [a]
    strips = [zlib.compress(p.tobytes()) if deflate else p.tobytes() for p in planes]
    n = len(strips)
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [bits] * ch), (259, 3, [8 if deflate else 1]),
            (262, 3, [1 if ch < 3 else 2]), (273, 4, [0] * n), (277, 3, [ch]), (278, 4, [h]),
            (279, 4, [len(b) for b in strips]), (284, 3, [2 if planar else 1]),
            (339, 3, [{"u": 1, "i": 2, "f": 3}[kind]] * ch)] + ([(338, 3, [extra])] if extra else [])
    tags.sort()
    ext_at = 8 + 2 + 12 * len(tags) + 4
    entries, ext = b"", b""
    sizes = [2 * len(v) if t == 3 else 4 * len(v) for _, t, v in tags]
    data_at = ext_at + sum(n for n in sizes if n > 4)
    offsets = list(np.cumsum([data_at] + [len(b) for b in strips])[:-1])
    for (tag, typ, v), size in zip(tags, sizes, strict=True):
        v = [int(o) for o in offsets] if tag == 273 else v
        packed = struct.pack(order + ("H" if typ == 3 else "I") * len(v), *v)
        if size <= 4:
            entries += struct.pack(order + "HHI", tag, typ, len(v)) + packed.ljust(4, b"\0")
        else:
            entries += struct.pack(order + "HHII", tag, typ, len(v), ext_at + len(ext))
            ext += packed
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8)
    return head + struct.pack(order + "H", len(tags)) + entries + b"\0\0\0\0" + ext + b"".join(strips)


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("channels", "bits"), [(1, 8), (1, 16), (3, 8), (3, 16), (4, 8), (4, 16)])
def test_tiff_gray_rgb_rgba_8_and_16_bit_exact(tmp_path, rng, channels, bits, order, deflate):
    samples = rng.integers(0, 2**bits, (5, 7, channels))
    samples.flat[:2] = [0, 2**bits - 1]
    path = tmp_path / "x.tif"
    path.write_bytes(tiff_encode(samples, bits, order=order, deflate=deflate,
                                 extra=2 if channels == 4 else None))
    got = read_image(path, keep_alpha=True)
    want = samples[..., 0] if channels == 1 else samples
    assert got.dtype == np.dtype(f"u{bits // 8}") and got.dtype.isnative
    assert np.array_equal(got, want)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("kind", "bits"), [("i", 16), ("i", 32), ("u", 32), ("f", 32)])
def test_tiff_signed_wide_and_float_gray_exact(tmp_path, rng, kind, bits, order):
    lim = 2 ** (bits - 1)
    samples = (rng.normal(0, 1e3, (5, 7)).astype(np.float32) if kind == "f" else
               rng.integers(-lim if kind == "i" else 0, lim if kind == "i" else 2 * lim, (5, 7)))
    samples.flat[:2] = (-lim, lim - 1) if kind == "i" else samples.flat[:2]
    path = tmp_path / "g.tif"
    path.write_bytes(tiff_encode(samples, bits, order=order, kind=kind))
    if (kind, order) == ("u", ">"):  # Pillow does not open it: refused, never misread
        with pytest.raises(ValueError, match=r"cannot decode image .*g\.tif"):
            read_image(path)
        return
    got = read_image(path)
    assert got.dtype == np.dtype(f"{kind}{bits // 8}") and np.array_equal(got, samples)


@pytest.mark.parametrize("deflate", [False, True])
def test_planar_16_bit_rgb_tiff_is_refused_not_truncated(tmp_path, rng, deflate):
    path = tmp_path / "planar.tif"
    path.write_bytes(tiff_encode(rng.integers(0, 65536, (5, 7, 3)), 16, planar=True, deflate=deflate))
    with pytest.raises(ValueError, match=r"planar\.tif exactly: 16-bit samples .*one plane per channel"):
        read_image(path)
    path.write_bytes(tiff_encode(s8 := rng.integers(0, 256, (5, 7, 3)), 8, planar=True, deflate=deflate))
    assert np.array_equal(read_image(path), s8)  # 8-bit planar is exact


@pytest.mark.parametrize("maxval", [255, 65535, 1023])
@pytest.mark.parametrize("channels", [1, 3])
def test_binary_pnm_exact_or_refused(tmp_path, rng, maxval, channels):
    samples = rng.integers(0, maxval + 1, (4, 5, channels))
    path = tmp_path / "x.ppm"
    head = f"{'P5' if channels == 1 else 'P6'}\n# made by a raw converter\n5 4\n{maxval}\n".encode()
    path.write_bytes(head + samples.astype(">u2" if maxval > 255 else "u1").tobytes())
    if maxval == 1023:  # Pillow would rescale to 8 or 16 bits: refused
        with pytest.raises(ValueError, match=r"x\.ppm exactly: its maxval 1023 is neither 255 nor 65535"):
            read_image(path)
        return
    got = read_image(path)
    assert got.dtype == (np.uint16 if maxval > 255 else np.uint8)
    assert np.array_equal(got, samples if channels == 3 else samples[..., 0])


def test_what_cannot_be_read_exactly_is_refused(tmp_path, rng):
    path = tmp_path / "la16.tif"  # 16-bit gray + alpha TIFF: Pillow has no exact path
    path.write_bytes(tiff_encode(rng.integers(0, 65536, (4, 4, 2)), 16, extra=2))
    with pytest.raises(ValueError, match=r"cannot (decode|read) image .*la16\.tif"):
        read_image(path)
    Image.new("CMYK", (4, 4), (1, 2, 3, 4)).save(tmp_path / "c.tif")
    with pytest.raises(ValueError, match=r"c\.tif exactly: CMYK images need a colour-managed"):
        read_image(tmp_path / "c.tif")


def test_sixteen_bit_rgb_dataset_means_with_scale_1_65535(tmp_path, rng):
    from stimgen import dataset_stats

    imgs = [rng.integers(0, 65536, (6, 5, 3)) for _ in range(3)]
    for i, a in enumerate(imgs):
        (tmp_path / f"{i}.png").write_bytes(png_encode(a, 16, 2))
    (tmp_path / "a.png").write_bytes(png_encode(np.dstack([imgs[0], imgs[0][..., :1]]), 16, 6))
    s = dataset_stats(str(tmp_path), scale=1 / 65535, progress=False)
    allpx = np.concatenate([a.reshape(-1, 3) for a in (*imgs, imgs[0])]) / 65535
    np.testing.assert_allclose(s.mean, allpx.mean(0), rtol=1e-12)  # alpha dropped, 16 bits kept
    np.testing.assert_allclose(s.std, allpx.std(0), rtol=1e-10)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("argv", [["spectrum", "{p}", "--ppd", "30"], ["flow", "{p}", "{p}"]])
def test_a_fifo_is_refused_before_it_is_opened(tmp_path, argv):
    """`stimgen spectrum` and `stimgen flow` on a named pipe blocked forever in open()."""
    import subprocess
    import sys

    fifo = tmp_path / "frame.png"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "stimgen", *(a.format(p=fifo) for a in argv)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[0]} blocked on a FIFO")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"stimgen {argv[0]}: error: {fifo} is a named pipe (fifo), not a regular "
                           "file; give an image or .npy file\n")


def test_folders_devices_and_fifos_are_refused_by_read_image(tmp_path):
    with pytest.raises(ValueError, match=rf"^{tmp_path} is a directory, not a regular file"):
        read_image(tmp_path)
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(ValueError, match=r"dir\.npy is a directory, not a regular file"):
        read_image(tmp_path / "dir.npy")
    if os.path.exists("/dev/null"):
        with pytest.raises(ValueError, match=r"^/dev/null is a character device, not a regular file"):
            read_image("/dev/null")
    link = tmp_path / "link.npy"  # a symlink to a regular file is read as that file
    np.save(tmp_path / "a.npy", np.arange(3.0))
    link.symlink_to(tmp_path / "a.npy")
    assert np.array_equal(read_image(link), np.arange(3.0))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_image(tmp_path / "a.npy" / "x.png")
