"""Python bindings of libqwen, an on-device inference runtime for the Qwen model family.

    import qwen

    with qwen.Model("qwen2.5-0.5b-instruct-q8_0.gguf") as model, model.context(n_ctx=2048) as ctx:
        for piece in ctx.chat([{"role": "user", "content": "Why is the sky blue?"}], stream=True):
            print(piece, end="", flush=True)

The package calls the C API of ``libqwen.so`` through ctypes. The library is looked up in this order: the
``QWEN_LIBRARY`` environment variable (a file, or a folder holding libqwen.so), the copy bundled in the package,
then the system's ``libqwen.so.0``. Failures raise :class:`QwenError` carrying the library's status and message.
"""

from __future__ import annotations

from . import _lib
from ._lib import LibraryNotFoundError, library_path
from .context import Context, KVType, TextStream
from .errors import (
    BufferTooSmallError,
    CancelledError,
    ContextFullError,
    FileIOError,
    FormatError,
    InvalidArgumentError,
    MissingFeatureError,
    OutOfMemoryError,
    QwenError,
    UnsupportedError,
    last_error,
    status_name,
)
from .media import Audio, GroundingBox, Image, grounding_boxes, has_audio, has_vision
from .model import Model, ModelInfo, export_projector, quantize

__version__ = "0.1.0"


def version() -> str:
    """Version of the loaded libqwen (``qwen_version``), e.g. ``"0.1.0"``."""
    v = _lib.load().qwen_version()
    return v.decode("ascii") if v else ""


def load_library(path: str) -> None:
    """Loads libqwen from ``path`` (before any other use of the package; later calls keep the first library)."""
    _lib.load(path)


__all__ = [
    "Audio",
    "BufferTooSmallError",
    "CancelledError",
    "Context",
    "ContextFullError",
    "FileIOError",
    "FormatError",
    "GroundingBox",
    "Image",
    "InvalidArgumentError",
    "KVType",
    "LibraryNotFoundError",
    "MissingFeatureError",
    "Model",
    "ModelInfo",
    "OutOfMemoryError",
    "QwenError",
    "TextStream",
    "UnsupportedError",
    "export_projector",
    "grounding_boxes",
    "has_audio",
    "has_vision",
    "last_error",
    "library_path",
    "load_library",
    "quantize",
    "status_name",
    "version",
]
