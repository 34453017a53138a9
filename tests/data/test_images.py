"""Image files to tensors, whatever Pillow can open; clear errors for what it cannot."""

import numpy as np
import pytest
from PIL import Image

from nnsim.data.images import load_image, save_image
from nnsim.errors import NnsimError


def test_gray_is_h_by_w_in_0_1(tmp_path):
    pixels = np.array([[0, 128], [255, 64]], dtype=np.uint8)
    Image.fromarray(pixels, "L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    assert loaded.tensor.shape == (2, 2) and loaded.tensor.dtype == np.float32
    np.testing.assert_allclose(loaded.tensor, pixels / 255.0, rtol=1e-6)


def test_rgb_is_3_by_h_by_w_channel_first(tmp_path):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    pixels[..., 0] = 255  # pure red
    Image.fromarray(pixels, "RGB").save(tmp_path / "c.png")
    tensor = load_image(tmp_path / "c.png").tensor
    assert tensor.shape == (3, 2, 3)
    assert tensor[0].min() == 1.0 and tensor[1].max() == 0.0 and tensor[2].max() == 0.0


def test_alpha_is_flattened_onto_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    np.testing.assert_allclose(loaded.tensor, 1.0)
    assert any("transparency" in note for note in loaded.notes)


def test_palette_cmyk_16bit_and_1bit(tmp_path):
    Image.new("P", (4, 4), 3).save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").tensor.shape == (3, 4, 4)
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(tmp_path / "c.jpg")
    cmyk = load_image(tmp_path / "c.jpg")
    assert cmyk.tensor.shape == (3, 4, 4) and cmyk.tensor.min() > 0.9  # no ink is white
    values = np.array([[0, 256, 32768], [40000, 65535, 1000], [7, 255, 60000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    loaded = load_image(tmp_path / "16.png")
    assert loaded.tensor.shape == (3, 3)
    # scaled by 65535, not truncated to 8 bits (32768 -> 127/255) and not clipped (256 -> 1.0)
    np.testing.assert_allclose(loaded.tensor, values / 65535.0, rtol=1e-6)
    Image.new("1", (5, 5), 1).save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png").tensor.min() == 1.0


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((8, 16), dtype=np.uint8)
    pixels[:, :8] = 255  # white left half, 16 wide and 8 high as stored
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored turned: rotate 90° clockwise to view
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "r.jpg")
    assert loaded.tensor.shape == (16, 8)
    top, bottom = loaded.tensor[:6].mean(), loaded.tensor[10:].mean()
    assert top > 0.9 and bottom < 0.1  # turned clockwise, the left edge is now the top
    assert any("EXIF" in note for note in loaded.notes)


def test_first_frame_of_an_animation(tmp_path):
    frames = [Image.new("L", (3, 3), v) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    loaded = load_image(tmp_path / "anim.gif")
    assert any("first of 2 frames" in note for note in loaded.notes)
    assert loaded.tensor.max() < 0.2


def test_convert_and_resize_are_reported(tmp_path):
    Image.new("RGB", (10, 20), (255, 0, 0)).save(tmp_path / "x.png")
    loaded = load_image(tmp_path / "x.png", mode="L", size=(5, 5))
    assert loaded.tensor.shape == (5, 5)
    assert any("grayscale" in n for n in loaded.notes) and any("resized 10×20 to 5×5" in n for n in loaded.notes)


def test_save_and_load_round_trip(tmp_path):
    tensor = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    save_image(tensor, tmp_path / "t.png")
    np.testing.assert_allclose(load_image(tmp_path / "t.png").tensor, tensor, atol=1 / 255)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"hello, I am text", "not an image"),
        (b"", "not an image"),
    ],
)
def test_not_an_image(tmp_path, content, message):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(NnsimError, match=message):
        load_image(path)


def test_truncated_image(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(NnsimError, match="damaged or truncated"):
        load_image(tmp_path / "cut.png")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(NnsimError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(NnsimError, match="is a folder"):
        load_image(tmp_path)
