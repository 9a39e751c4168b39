"""qwen.Image and qwen.Audio: media inputs for multimodal models (vision and audio API of libqwen)."""

from __future__ import annotations

import os
from ctypes import POINTER, byref, c_float, c_uint8, c_void_p
from typing import Any, NamedTuple, Optional

import numpy as np

from . import _lib, _util
from .errors import check, missing, required

_IMAGE_API = ("qwen_image_load", "qwen_image_from_rgb8", "qwen_image_free")
_AUDIO_API = ("qwen_audio_load", "qwen_audio_from_pcm_f32", "qwen_audio_free")


def has_vision() -> bool:
    """True if the loaded libqwen has the image API."""
    return _lib.has(*_IMAGE_API, "qwen_image_embed")


def has_audio() -> bool:
    """True if the loaded libqwen has the audio API."""
    return _lib.has(*_AUDIO_API, "qwen_audio_embed")


def _free(media: "Image | Audio", fn_name: str) -> None:
    """close() of Image and Audio: frees the handle with ``fn_name`` (qwen_image_free / qwen_audio_free) once."""
    handle = _util.take_handle(media)
    if handle is not None:
        fn = _lib.optional(fn_name)
        if fn is not None:
            fn(handle)


def _rgb8(source: Any) -> np.ndarray:
    """An H x W x 3 C-contiguous uint8 array from a PIL image or a numpy array (gray / RGBA converted)."""
    if isinstance(source, np.ndarray):
        a = source
        if a.dtype != np.uint8:
            raise TypeError(f"image arrays must be uint8, not {a.dtype}")
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        elif a.ndim == 3 and a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        elif a.ndim == 3 and a.shape[2] == 4:
            a = a[:, :, :3]  # alpha dropped, as PIL's convert("RGB") does
        elif not (a.ndim == 3 and a.shape[2] == 3):
            raise ValueError(f"image arrays must be HxW, HxWx1, HxWx3 or HxWx4, not shape {a.shape}")
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"empty image (shape {a.shape})")
        return np.ascontiguousarray(a)
    # a PIL image (duck-typed so Pillow stays optional)
    if hasattr(source, "convert") and hasattr(source, "size") and hasattr(source, "mode"):
        rgb = source.convert("RGB") if source.mode != "RGB" else source
        return _rgb8(np.asarray(rgb, dtype=np.uint8))
    raise TypeError(f"an image is a path, a PIL image or a numpy array, not {type(source).__name__}")


class Image(_util.Closeable):
    """An image for a vision model (Qwen2-VL, Qwen2.5-VL). Free it with :meth:`close` or ``with``.

    Args:
        source: a path (PNG or JPEG), the encoded file as ``bytes``, a PIL image, or a numpy ``H x W x 3`` uint8
            array (``H x W`` grayscale and ``H x W x 4`` RGBA are converted; PIL images go through ``convert("RGB")``).
        min_pixels, max_pixels: bounds on the pixel count the image is resized to, which set its token count (one
            token per 28 x 28 pixels); 0 = the model's (``qwen_image_set_pixel_bounds``).
        decode_limit: files or bytes with more pixels are refused (0 = the library's default, Pillow's limit).
        apply_orientation: apply the EXIF orientation of files or bytes (as transformers' load_image does).

    Decoding follows the reference pipeline (Pillow decoding, EXIF orientation, transparency composited onto white).

    Raises:
        MissingFeatureError: the library has no vision API.
        QwenError: e.g. ``QWEN_ERR_IO`` for a missing file, ``QWEN_ERR_FORMAT`` for an undecodable one.
    """

    def __init__(self, source: Any, *, min_pixels: int = 0, max_pixels: int = 0, decode_limit: int = 0,
                 apply_orientation: bool = True) -> None:
        self._handle: Optional[c_void_p] = None
        if not _lib.has(*_IMAGE_API):
            raise missing("vision", ", ".join(_IMAGE_API))
        low = _util.integer(min_pixels, "min_pixels", 0, 2**62)
        high = _util.integer(max_pixels, "max_pixels", 0, 2**62)
        limit = _util.integer(decode_limit, "decode_limit", 0, 2**62)
        orient = _util.flag(apply_orientation, "apply_orientation")
        out = c_void_p()
        if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
            params = None
            if limit or not orient:
                make = required("image decoding options", "qwen_image_default_params")
                params = make()
                params.max_pixels = limit
                params.apply_orientation = 1 if orient else 0
            if isinstance(source, (str, os.PathLike)):
                raw = _util.path_bytes(source, "image path")
                if params is None:
                    check(_lib.optional("qwen_image_load")(raw, byref(out)))  # type: ignore[misc]
                else:
                    check(_lib.optional("qwen_image_load_ex")(raw, byref(params), byref(out)))  # type: ignore[misc]
            else:
                decode = required("image decoding from memory", "qwen_image_decode")
                data = bytes(source)
                buf = (c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0")
                check(decode(buf, len(data), byref(params) if params is not None else None, byref(out)))
        else:
            rgb = _rgb8(source)
            h, w = int(rgb.shape[0]), int(rgb.shape[1])
            _util.integer(h, "image height", 1)
            _util.integer(w, "image width", 1)
            ptr = rgb.ctypes.data_as(POINTER(c_uint8))
            check(_lib.optional("qwen_image_from_rgb8")(ptr, w, h, byref(out)))  # type: ignore[misc]
        self._handle = out
        if low or high:
            try:
                self.set_pixel_bounds(low, high)
            except BaseException:
                self.close()
                raise

    @classmethod
    def from_file(cls, path: _util.PathLike, **options: Any) -> "Image":
        """Decodes a PNG or JPEG file."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        return cls(path, **options)

    @classmethod
    def from_bytes(cls, data: bytes, **options: Any) -> "Image":
        """Decodes a PNG or JPEG file held in memory."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        return cls(data, **options)

    @classmethod
    def from_pil(cls, image: Any, **options: Any) -> "Image":
        """From a PIL image (converted to RGB)."""
        return cls(image, **options)

    @classmethod
    def from_array(cls, array: np.ndarray, **options: Any) -> "Image":
        """From a uint8 ``H x W x 3`` (or gray / RGBA) array."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"array must be a numpy array, not {type(array).__name__}")
        return cls(array, **options)

    @property
    def handle(self) -> c_void_p:
        """The ``qwen_image *`` handle."""
        if self._handle is None:
            raise ValueError("the image is closed")
        return self._handle

    def _size(self, name: str) -> int:
        fn = required("image sizes", name)
        n: int = check(fn(self.handle))
        return n

    @property
    def width(self) -> int:
        """Width in pixels (after the EXIF orientation)."""
        return self._size("qwen_image_width")

    @property
    def height(self) -> int:
        """Height in pixels (after the EXIF orientation)."""
        return self._size("qwen_image_height")

    def to_array(self) -> np.ndarray:
        """The decoded pixels as a (height, width, 3) uint8 array (``qwen_image_copy_rgb8``)."""
        fn = required("image pixels", "qwen_image_copy_rgb8")
        out = np.empty((self.height, self.width, 3), dtype=np.uint8)
        check(fn(self.handle, out.ctypes.data_as(POINTER(c_uint8)), out.nbytes))
        return out

    def set_pixel_bounds(self, min_pixels: int = 0, max_pixels: int = 0) -> None:
        """Bounds on the pixel count the image is resized to (its token count); 0 = the model's."""
        low = _util.integer(min_pixels, "min_pixels", 0, 2**62)
        high = _util.integer(max_pixels, "max_pixels", 0, 2**62)
        fn = required("image pixel bounds", "qwen_image_set_pixel_bounds")
        check(fn(self.handle, low, high))

    def n_tokens(self, model: Any) -> int:
        """Embedding rows (``<|image_pad|>`` tokens) the image takes in a prompt of ``model``, without computing them.

        Raises QwenError ``QWEN_ERR_UNSUPPORTED`` if the model takes no images."""
        fn = required("vision", "qwen_image_n_tokens")
        n: int = check(fn(model._require(), self.handle))
        return n

    def close(self) -> None:
        """Frees the image (idempotent)."""
        _free(self, "qwen_image_free")

    def __repr__(self) -> str:
        if self._handle is None:
            return "<qwen.Image (closed)>"
        return f"<qwen.Image {self.width}x{self.height}>"


class Audio(_util.Closeable):
    """An audio clip for a multimodal model: from a file path, or from samples and their rate.

    The library converts clips to what the audio models take (mono, 16 kHz).

    Args:
        source: a path (WAV, FLAC, OGG/Vorbis, Opus, MP3, ... as libsndfile reads them), or a numpy array of samples:
            shape ``(frames,)`` (mono) or ``(frames, channels)``; float samples in [-1, 1], or int16/int32 PCM
            (scaled to [-1, 1]).
        sample_rate: samples per second, required with an array.
        max_seconds: longest clip accepted (the library's default: 600 s).

    Raises:
        MissingFeatureError: the library has no audio API.
        QwenError: ``QWEN_ERR_IO`` (missing file), ``QWEN_ERR_FORMAT`` (not audio), ``QWEN_ERR_INVALID_ARGUMENT``
            (too long, not finite, ...).
    """

    def __init__(self, source: Any, sample_rate: Optional[int] = None, max_seconds: Optional[float] = None) -> None:
        self._handle: Optional[c_void_p] = None
        if not _lib.has(*_AUDIO_API):
            raise missing("audio", ", ".join(_AUDIO_API))
        params = None
        if max_seconds is not None:
            limit = _util.number(max_seconds, "max_seconds")
            if not _lib.has("qwen_audio_default_params", "qwen_audio_load_ex", "qwen_audio_from_pcm_f32_ex"):
                raise missing("audio limits", "qwen_audio_load_ex")
            params = _lib.optional("qwen_audio_default_params")()  # type: ignore[misc]
            params.max_seconds = limit
        out = c_void_p()
        if isinstance(source, (str, bytes, os.PathLike)):
            if sample_rate is not None:
                raise ValueError("sample_rate is only for sample arrays (a file carries its own)")
            raw = _util.path_bytes(source, "audio path")
            if params is None:
                check(_lib.optional("qwen_audio_load")(raw, byref(out)))  # type: ignore[misc]
            else:
                check(_lib.optional("qwen_audio_load_ex")(raw, byref(params), byref(out)))  # type: ignore[misc]
            self.sample_rate: Optional[int] = None
            self.channels: Optional[int] = None
            self.n_frames: Optional[int] = None
        else:
            if sample_rate is None:
                raise TypeError("sample_rate is required with a sample array")
            rate = _util.integer(sample_rate, "sample_rate", 1)
            samples = self._samples(source)
            frames, channels = int(samples.shape[0]), int(samples.shape[1])
            ptr = samples.ctypes.data_as(POINTER(c_float))
            if params is None:
                check(_lib.optional("qwen_audio_from_pcm_f32")(ptr, frames, channels, rate, byref(out)))  # type: ignore[misc]
            else:
                fn = _lib.optional("qwen_audio_from_pcm_f32_ex")
                check(fn(ptr, frames, channels, rate, byref(params), byref(out)))  # type: ignore[misc]
            self.sample_rate, self.channels, self.n_frames = rate, channels, frames
        self._handle = out

    @property
    def duration(self) -> float:
        """Seconds of audio (after the conversion to 16 kHz)."""
        fn = required("audio durations", "qwen_audio_duration")
        seconds = float(fn(self.handle))
        if seconds < 0:
            check(int(seconds))
        return seconds

    def n_tokens(self, model: Any) -> int:
        """Embedding rows (``<|AUDIO|>`` tokens) the clip takes in a prompt of ``model``, without computing them.

        Raises QwenError ``QWEN_ERR_UNSUPPORTED`` if the model takes no audio."""
        fn = required("audio", "qwen_audio_n_tokens")
        n: int = check(fn(model._require(), self.handle))
        return n

    @staticmethod
    def _samples(source: Any) -> np.ndarray:
        if not isinstance(source, np.ndarray):
            if isinstance(source, (list, tuple)):
                source = np.asarray(source, dtype=np.float32)
            else:
                raise TypeError(f"audio is a path or a numpy array of samples, not {type(source).__name__}")
        a = source
        if np.issubdtype(a.dtype, np.integer):
            if a.dtype == np.int16:
                a = a.astype(np.float32) / 32768.0
            elif a.dtype == np.int32:
                a = (a.astype(np.float64) / 2147483648.0).astype(np.float32)
            else:
                raise TypeError(f"integer samples must be int16 or int32, not {a.dtype}")
        elif np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32, copy=False)
        else:
            raise TypeError(f"samples must be float or int16/int32, not {a.dtype}")
        if a.ndim == 1:
            a = a[:, None]
        elif a.ndim != 2:
            raise ValueError(f"samples must have shape (frames,) or (frames, channels), not {a.shape}")
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"no samples (shape {a.shape})")
        if a.shape[1] > 64:
            raise ValueError(f"{a.shape[1]} channels: pass samples as (frames, channels)")
        return np.ascontiguousarray(a)  # (frames, channels) row-major = interleaved

    @classmethod
    def from_file(cls, path: _util.PathLike) -> "Audio":
        """Decodes an audio file (the formats libqwen reads)."""
        return cls(path)

    @classmethod
    def from_samples(cls, samples: np.ndarray, sample_rate: int) -> "Audio":
        """From samples ``(frames,)`` or ``(frames, channels)`` at ``sample_rate`` Hz."""
        return cls(samples, sample_rate)

    @property
    def handle(self) -> c_void_p:
        """The ``qwen_audio *`` handle."""
        if self._handle is None:
            raise ValueError("the audio clip is closed")
        return self._handle

    def close(self) -> None:
        """Frees the clip (idempotent)."""
        _free(self, "qwen_audio_free")


def as_image(item: Any) -> "tuple[Image, bool]":
    """(Image, owned): an Image as is, anything else converted (then owned by the caller, to be closed)."""
    if isinstance(item, Image):
        return item, False
    return Image(item), True


def as_audio(item: Any) -> "tuple[Audio, bool]":
    """(Audio, owned): an Audio as is, a path, or a ``(samples, sample_rate)`` pair converted."""
    if isinstance(item, Audio):
        return item, False
    if isinstance(item, tuple) and len(item) == 2:
        return Audio(item[0], item[1]), True
    return Audio(item), True


class GroundingBox(NamedTuple):
    """A box of a Qwen-VL answer: pixels of the image (or 0-1000 values without an image size) and its reference."""

    x1: int
    y1: int
    x2: int
    y2: int
    ref: Optional[str]


def grounding_boxes(text: str, width: int = 0, height: int = 0) -> "list[GroundingBox]":
    """The ``<ref>…</ref><box>(x1,y1),(x2,y2)</box>`` boxes of a first-generation Qwen-VL answer
    (``qwen_grounding_boxes``), mapped to pixels of a ``width`` x ``height`` image (both 0: the 0-1000 values)."""
    raw = _util.text_bytes(text, "text")
    w = _util.integer(width, "width", 0, 2**31 - 1)
    h = _util.integer(height, "height", 0, 2**31 - 1)
    fn = required("grounding", "qwen_grounding_boxes")
    n: int = check(fn(raw, w, h, None, 0))
    boxes = (_lib.Box * max(n, 1))()
    check(fn(raw, w, h, boxes, n))
    return [GroundingBox(b.x1, b.y1, b.x2, b.y2,
                         raw[b.ref_offset:b.ref_offset + b.ref_length].decode("utf-8", "replace") if b.ref_offset >= 0 else None)
            for b in boxes[:n]]


__all__ = ["Image", "Audio", "GroundingBox", "grounding_boxes", "has_vision", "has_audio"]
