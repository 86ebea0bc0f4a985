"""Reading images without rescaling, PNG/GIF encoding, atomic outputs and safe --force."""

import os

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
    with pytest.raises(FileExistsError, match="is not a directory"), atomic_directory(afile, force=True):
        pass
    monkeypatch.chdir(project)
    with pytest.raises(FileExistsError, match="current directory or one of its parents"), \
            atomic_directory(tmp_path, force=True):
        pass
    old = tmp_path / "old_set"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    with atomic_directory(old, force=True) as tmp:
        (tmp / "manifest.json").write_text('{"new": 1}')
    assert (old / "manifest.json").read_text() == '{"new": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "old_set", "project"]
    assert os.path.isdir(project)


def test_unwritable_output_names_it(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OSError, match=r"cannot write the output .*sub: its parent .*afile is not a directory"):
        with atomic_directory(afile / "sub"):
            pass
