"""qwen.Image and qwen.Audio: input conversion, and the vision/audio API when the library has it."""

from __future__ import annotations

import numpy as np
import pytest

import qwen
from qwen.media import Audio, _rgb8

from conftest import TINY_Q8


def test_rgb8_conversions() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert np.array_equal(_rgb8(rgb), rgb)
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    assert _rgb8(gray).shape == (1, 3, 3) and np.array_equal(_rgb8(gray)[..., 2], gray)
    assert _rgb8(gray[:, :, None]).shape == (1, 3, 3)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 3] = 7
    assert _rgb8(rgba).shape == (2, 2, 3) and not _rgb8(rgba).any()
    assert _rgb8(rgb[:, ::-1]).flags["C_CONTIGUOUS"]
    with pytest.raises(TypeError):
        _rgb8(rgb.astype(np.float32))
    with pytest.raises(ValueError):
        _rgb8(np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError):
        _rgb8(np.zeros((0, 2, 3), dtype=np.uint8))
    with pytest.raises(TypeError):
        _rgb8(42)


def test_rgb8_from_pil() -> None:
    PIL = pytest.importorskip("PIL.Image")
    for mode in ["RGB", "L", "RGBA", "P"]:
        img = PIL.new(mode, (5, 4))
        out = _rgb8(img)
        assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    img = PIL.new("RGB", (2, 1), (10, 20, 30))
    assert _rgb8(img).tolist() == [[[10, 20, 30], [10, 20, 30]]]


def test_audio_sample_conversions() -> None:
    mono = Audio._samples(np.zeros(100, dtype=np.float64))
    assert mono.shape == (100, 1) and mono.dtype == np.float32
    stereo = Audio._samples(np.zeros((50, 2), dtype=np.float32))
    assert stereo.shape == (50, 2)
    pcm = Audio._samples(np.array([-32768, 0, 16384], dtype=np.int16))
    assert pcm[:, 0].tolist() == [-1.0, 0.0, 0.5]
    assert Audio._samples([0.0, 0.5]).shape == (2, 1)
    with pytest.raises(ValueError):
        Audio._samples(np.zeros((2, 1000), dtype=np.float32))  # (channels, frames) by mistake
    with pytest.raises(ValueError):
        Audio._samples(np.zeros(0, dtype=np.float32))
    with pytest.raises(TypeError):
        Audio._samples(np.zeros(4, dtype=np.uint8))
    with pytest.raises(TypeError):
        Audio._samples("samples")


def test_without_vision_api() -> None:
    if qwen.has_vision():
        pytest.skip("the library has the vision API")
    with pytest.raises(qwen.MissingFeatureError, match="no vision support"):
        qwen.Image(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(qwen.MissingFeatureError):
        qwen.Model(TINY_Q8, mmproj="/nonexistent/mmproj.gguf")
    with qwen.Model(TINY_Q8) as m, m.context(n_ctx=64) as c:
        with pytest.raises(qwen.MissingFeatureError):
            c.embed_image(np.zeros((4, 4, 3), dtype=np.uint8))
        with pytest.raises(NotImplementedError):
            c.eval_prompt("hi", images=[])


def test_without_audio_api() -> None:
    if qwen.has_audio():
        pytest.skip("the library has the audio API")
    with pytest.raises(qwen.MissingFeatureError, match="no audio support"):
        qwen.Audio(np.zeros(16000, dtype=np.float32), 16000)
    with qwen.Model(TINY_Q8) as m, m.context(n_ctx=64) as c:
        with pytest.raises(qwen.MissingFeatureError):
            c.embed_audio((np.zeros(16000, dtype=np.float32), 16000))
