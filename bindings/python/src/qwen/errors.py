"""Exceptions raised by the qwen package."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple, Type

from . import _lib


class QwenError(Exception):
    """A libqwen call failed (it returned a negative ``qwen_status``).

    Attributes:
        status: the status code, e.g. ``-2``.
        status_name: its name from ``qwen_status_string``, e.g. ``"QWEN_ERR_IO"``.
        message: the library's description from ``qwen_last_error()``.
    """

    def __init__(self, status: int, message: str, status_name: Optional[str] = None) -> None:
        self.status = int(status)
        self.status_name = status_name if status_name is not None else _status_name(self.status)
        self.message = message
        super().__init__(f"{self.status_name}: {message}" if message else self.status_name)

    def __reduce__(self) -> Tuple[Any, ...]:  # keep pickling (e.g. across multiprocessing) working with the custom __init__
        return (type(self), (self.status, self.message, self.status_name))


class InvalidArgumentError(QwenError):
    """QWEN_ERR_INVALID_ARGUMENT: a value the library rejected (a token id outside the vocabulary, ...)."""


class FileIOError(QwenError):
    """QWEN_ERR_IO: a file is missing or unreadable."""


class FormatError(QwenError):
    """QWEN_ERR_FORMAT: a malformed or truncated file."""


class UnsupportedError(QwenError):
    """QWEN_ERR_UNSUPPORTED: an unknown architecture or weight type, or a feature this build lacks."""


class OutOfMemoryError(QwenError):
    """QWEN_ERR_OUT_OF_MEMORY."""


class ContextFullError(QwenError):
    """QWEN_ERR_CONTEXT_FULL: the tokens do not fit in the context's KV cache.

    When raised by generation, ``partial_text`` holds the text generated before the cache filled up.
    """

    partial_text: str = ""


class CancelledError(QwenError):
    """QWEN_ERR_CANCELLED: the call was cancelled with :meth:`qwen.Context.cancel`."""


class BufferTooSmallError(QwenError):
    """QWEN_ERR_BUFFER_TOO_SMALL (handled inside the package; seen only if a size changes between calls)."""


class MissingFeatureError(UnsupportedError, NotImplementedError):
    """The loaded libqwen has no vision or audio API (status QWEN_ERR_UNSUPPORTED)."""

    def __init__(self, message: str) -> None:
        super().__init__(_lib.QWEN_ERR_UNSUPPORTED, message, "QWEN_ERR_UNSUPPORTED")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message,))


_BY_STATUS: Dict[int, Type[QwenError]] = {
    _lib.QWEN_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    _lib.QWEN_ERR_IO: FileIOError,
    _lib.QWEN_ERR_FORMAT: FormatError,
    _lib.QWEN_ERR_UNSUPPORTED: UnsupportedError,
    _lib.QWEN_ERR_OUT_OF_MEMORY: OutOfMemoryError,
    _lib.QWEN_ERR_CONTEXT_FULL: ContextFullError,
    _lib.QWEN_ERR_CANCELLED: CancelledError,
    _lib.QWEN_ERR_BUFFER_TOO_SMALL: BufferTooSmallError,
}


def _status_name(status: int) -> str:
    try:
        name = _lib.load().qwen_status_string(status)
        return name.decode("ascii") if name else "QWEN_UNKNOWN_STATUS"
    except OSError:
        return "QWEN_UNKNOWN_STATUS"


def status_name(status: int) -> str:
    """The library's name of a status code (``qwen_status_string``)."""
    return _status_name(status)


def last_error() -> str:
    """``qwen_last_error()`` of the calling thread."""
    message = _lib.load().qwen_last_error()
    return message.decode("utf-8", "replace") if message else ""


def error_from_status(status: int) -> QwenError:
    """The exception for a negative status, with the calling thread's last error message."""
    message = last_error()
    return _BY_STATUS.get(status, QwenError)(status, message, _status_name(status))


def check(status: int) -> int:
    """Returns a non-negative status unchanged; raises the matching :class:`QwenError` for a negative one."""
    if status < 0:
        raise error_from_status(status)
    return status


def missing(feature: str, names: str) -> MissingFeatureError:
    """The error for a library built without ``feature`` (``names``: the C functions it lacks)."""
    return MissingFeatureError(
        f"this libqwen ({_lib.library_path()}) has no {feature} support: it does not export {names}"
    )


def required(feature: str, name: str) -> Callable[..., Any]:
    """The function ``name`` of the vision/audio API (:func:`_lib.optional`); MissingFeatureError for ``feature`` if
    the library lacks it."""
    fn = _lib.optional(name)
    if fn is None:
        raise missing(feature, name)
    return fn
