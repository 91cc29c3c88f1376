import numpy as np
import pytest
import torch
from PIL import Image

from igos.images import ImageLoadError, find_images, load_image, photo_geometry


@pytest.fixture
def rgb_array():
    g = np.random.default_rng(0)
    return (g.random((40, 60, 3)) * 255).astype(np.uint8)


def test_rgb_squash_follows_the_protocol(tmp_path, rgb_array):
    p = tmp_path / "a.png"
    Image.fromarray(rgb_array).save(p)
    x = load_image(p, 224)
    ref = np.asarray(Image.fromarray(rgb_array).resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), ref, atol=1e-7)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1"])
def test_pillow_modes_become_rgb(tmp_path, rgb_array, mode):
    img = Image.fromarray(rgb_array).convert(mode)
    p = tmp_path / ("a.tif" if mode == "CMYK" else "a.png")
    img.save(p)
    x = load_image(p, 32)
    assert x.shape == (3, 32, 32)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_16bit_grayscale_keeps_its_range(tmp_path):
    arr = np.full((20, 20), 65535 // 2, dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(arr).save(p)
    x = load_image(p, 16)
    assert x.shape == (3, 16, 16)
    assert float(x.mean()) == pytest.approx(0.5, abs=0.01)  # not clipped to white


@pytest.mark.parametrize("wide", [True, False])
def test_center_crop_takes_the_centre(tmp_path, rgb_array, wide):
    """A photo in thirds, red | green | blue along its long side: with crop_fraction 1 the centre crop is exactly
    the green third (a corner crop would hold red or blue)."""
    thirds = np.zeros((20, 60, 3), dtype=np.uint8)
    thirds[:, :20, 0] = thirds[:, 20:40, 1] = thirds[:, 40:, 2] = 255
    p = tmp_path / "thirds.png"
    Image.fromarray(thirds if wide else thirds.transpose(1, 0, 2).copy()).save(p)
    x = load_image(p, 32, resize="crop", crop_fraction=1.0)
    assert x.shape == (3, 32, 32)
    inner = x[:, 1:-1, 1:-1]  # the outermost pixels may blend with the neighbouring third
    assert float(inner[1].min()) > 0.95 and float(inner[0].max()) < 0.05 and float(inner[2].max()) < 0.05
    p = tmp_path / "a.png"
    Image.fromarray(rgb_array).save(p)
    assert load_image(p, 32, resize="crop").shape == (3, 32, 32)


def test_a_preset_reads_files_with_its_own_size_crop_and_filter(tmp_path, rgb_array):
    """``ModelPreset.read`` is ``load_image`` with the preset's input size, resize, crop fraction and
    interpolation, and ``ModelPreset.geometry`` the matching ``photo_geometry``; a ``resize`` given overrides the
    preset's."""
    from igos.models import ModelPreset

    p = tmp_path / "a.png"
    Image.fromarray(rgb_array).save(p)
    preset = ModelPreset("tiny", torch.nn.Identity(), input_size=(24, 32), resize="crop", crop_fraction=0.5,
                         interpolation="bicubic")
    x = preset.read(p)
    assert x.shape == (3, 24, 32)
    torch.testing.assert_close(x, load_image(p, (24, 32), "crop", crop_fraction=0.5, interpolation="bicubic"),
                               rtol=0, atol=0)
    assert not torch.equal(x, load_image(p, (24, 32), "crop", crop_fraction=0.5))  # the filter is the preset's
    torch.testing.assert_close(preset.read(p, "squash"), load_image(p, (24, 32), interpolation="bicubic"),
                               rtol=0, atol=0)
    assert preset.geometry(p) == photo_geometry(p, (24, 32), "crop", crop_fraction=0.5)  # how read maps the pixels
    assert preset.geometry(p, "squash") == photo_geometry(p, (24, 32))
    assert preset.geometry(p) != preset.geometry(p, "squash")


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ImageLoadError, match="nope.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_not_an_image_names_the_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello")
    with pytest.raises(ImageLoadError, match="notes.jpg: not an image"):
        load_image(p)


def test_truncated_image_names_the_file(tmp_path, rgb_array):
    p = tmp_path / "cut.jpg"
    Image.fromarray(rgb_array).save(p, quality=95)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.jpg: truncated or corrupt"):
        load_image(p)


def test_find_images_expands_folders(tmp_path, rgb_array):
    (tmp_path / "sub").mkdir()
    for name in ["b.png", "a.jpg", "sub/c.png", "readme.txt"]:
        if name.endswith("txt"):
            (tmp_path / name).write_text("x")
        else:
            Image.fromarray(rgb_array).save(tmp_path / name)
    found = [p.relative_to(tmp_path).as_posix() for p in find_images([tmp_path])]
    assert found == ["a.jpg", "b.png", "sub/c.png"]
