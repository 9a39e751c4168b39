"""Argument validation and lifetime helpers shared by the public classes (internal)."""

from __future__ import annotations

import os
from ctypes import c_void_p
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from . import _lib

PathLike = Union[str, "os.PathLike[str]"]
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def path_bytes(value: Any, name: str) -> bytes:
    """A filesystem path as bytes for C (TypeError for non-paths, ValueError for embedded NULs)."""
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, (str, os.PathLike)):
        raw = os.fsencode(os.fspath(value))
        if isinstance(raw, str):  # a PathLike returning str
            raw = os.fsencode(raw)
    else:
        raise TypeError(f"{name} must be a path (str or os.PathLike), not {type(value).__name__}")
    if b"\0" in raw:
        raise ValueError(f"{name} contains a NUL character")
    return raw


def text_bytes(value: Any, name: str) -> bytes:
    """UTF-8 bytes of a str for C (TypeError for non-str, ValueError for embedded NULs)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    raw = value.encode("utf-8", "surrogatepass")
    if b"\0" in raw:
        raise ValueError(f"{name} contains a NUL character")
    return raw


def integer(value: Any, name: str, minimum: Optional[int] = None, maximum: int = INT32_MAX) -> int:
    """A Python or numpy integer (not bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = int(value)
    low = INT32_MIN if minimum is None else minimum
    if v < low or v > maximum:
        raise ValueError(f"{name} must be in {low}...{maximum}, not {v}")
    return v


def number(value: Any, name: str) -> float:
    """A real number (int or float, not bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def flag(value: Any, name: str) -> bool:
    """A bool (or 0/1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be a bool, not {type(value).__name__}")


def token_list(tokens: Any, name: str = "tokens") -> List[int]:
    """Token ids from a sequence of ints or a 1-D integer numpy array (range checks are the library's)."""
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ints, not {type(tokens).__name__}")
    if isinstance(tokens, np.ndarray):
        if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
            raise TypeError(f"{name} must be a 1-D integer array, not {tokens.ndim}-D {tokens.dtype}")
        out = [int(t) for t in tokens]
    else:
        try:
            items = list(tokens)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of ints, not {type(tokens).__name__}") from None
        out = []
        for t in items:
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
                raise TypeError(f"{name} must contain ints, not {type(t).__name__}")
            out.append(int(t))
    for t in out:
        if t < INT32_MIN or t > INT32_MAX:
            raise ValueError(f"token id {t} does not fit in int32")
    return out


Message = Union[Mapping[str, Any], Tuple[str, str], Sequence[str]]


def messages(items: Any) -> List[Tuple[str, str, Mapping[str, Any]]]:
    """Chat messages as (role, content, original mapping or {}); accepts dicts or (role, content) pairs."""
    if isinstance(items, (str, bytes, Mapping)):
        raise TypeError("messages must be a list of {'role', 'content'} dicts or (role, content) pairs")
    try:
        seq = list(items)
    except TypeError:
        raise TypeError(f"messages must be a list, not {type(items).__name__}") from None
    if not seq:
        raise ValueError("messages is empty")
    out: List[Tuple[str, str, Mapping[str, Any]]] = []
    for i, m in enumerate(seq):
        if isinstance(m, Mapping):
            if "role" not in m or "content" not in m:
                raise ValueError(f"message {i} needs 'role' and 'content' keys")
            role, content, extra = m["role"], m["content"], m
        elif isinstance(m, (tuple, list)) and len(m) == 2:
            role, content = m
            extra = {}
        else:
            raise TypeError(f"message {i} must be a dict or a (role, content) pair, not {type(m).__name__}")
        if not isinstance(role, str) or not isinstance(content, str):
            raise TypeError(f"message {i}: role and content must be str")
        if not role:
            raise ValueError(f"message {i} has an empty role")
        text_bytes(role, f"message {i} role")
        text_bytes(content, f"message {i} content")
        out.append((role, content, extra))
    return out


def string_list(values: Optional[Iterable[str]], name: str) -> List[bytes]:
    """A list of str (e.g. stop strings) as UTF-8 bytes; a single str is accepted as a one-element list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        out.append(text_bytes(v, name))
    return out


_Self = TypeVar("_Self", bound="Closeable")


class Closeable:
    """Base of the classes with a ``close()`` (C handles, stream threads): ``with`` closes them, and so does
    garbage collection, so a dropped object does not leak its handle or thread."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # e.g. at interpreter shutdown: never raise from a finalizer
            pass


class HandleOwner(Closeable):
    """A Closeable that owns a handle of the core C API (Model, Context) in ``_handle``, None once closed."""

    _handle: Optional[c_void_p]

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._handle is None

    def _free_handle(self, fn_name: str) -> None:
        """Frees the handle once with the C function ``fn_name``, unless the library is gone (finalizers run at
        interpreter shutdown)."""
        handle = take_handle(self)
        if handle is not None and _lib._lib is not None:
            getattr(_lib._lib, fn_name)(handle)


def take_handle(owner: Any) -> Optional[c_void_p]:
    """Detaches ``owner._handle`` for its close(): returns it (None once closed, or if __init__ failed before
    setting it) and leaves None, so that the handle is freed once."""
    handle: Optional[c_void_p] = getattr(owner, "_handle", None)
    owner._handle = None
    return handle
