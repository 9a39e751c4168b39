"""Locating ``libqwen.so`` and declaring its C ABI (``include/qwen.h``) for ctypes.

Internal module: the public API is in :mod:`qwen`. Every function of the header is declared here with its
exact argument and result types, and every struct is mirrored field by field. Functions of the vision and
audio API are bound lazily (:func:`optional`), so the package also works with a library built without them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int,
    c_int32,
    c_int64,
    c_uint8,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

# ---- status codes (qwen_status) ----

QWEN_OK = 0
QWEN_ERR_INVALID_ARGUMENT = -1
QWEN_ERR_IO = -2
QWEN_ERR_FORMAT = -3
QWEN_ERR_UNSUPPORTED = -4
QWEN_ERR_OUT_OF_MEMORY = -5
QWEN_ERR_CONTEXT_FULL = -6
QWEN_ERR_CANCELLED = -7
QWEN_ERR_BUFFER_TOO_SMALL = -8

# qwen_kv_type
QWEN_KV_F16 = 0
QWEN_KV_F32 = 1
QWEN_KV_Q8_0 = 2

UINT64_MAX = 2**64 - 1

# ---- structs (field order, types and sizes exactly as in qwen.h) ----


class ModelParams(Structure):
    """qwen_model_params"""

    _fields_ = [("n_threads", c_int32), ("use_mmap", c_int32)]


class ModelDetails(Structure):
    """qwen_model_details"""

    _fields_ = [
        ("architecture", c_char * 32),
        ("weight_type", c_char * 16),
        ("n_params", c_int64),
        ("n_bytes", c_int64),
        ("n_ctx_train", c_int32),
        ("n_vocab", c_int32),
        ("n_embd", c_int32),
        ("n_layer", c_int32),
        ("n_head", c_int32),
        ("n_head_kv", c_int32),
        ("head_dim", c_int32),
        ("token_bos", c_int32),
        ("token_eos", c_int32),
        ("token_eot", c_int32),
        ("token_pad", c_int32),
    ]


class ContextParams(Structure):
    """qwen_context_params"""

    _fields_ = [
        ("n_ctx", c_int32),
        ("n_threads", c_int32),
        ("n_batch", c_int32),
        ("kv_type", c_int32),
        ("sliding_window", c_int32),
    ]


class SamplingParams(Structure):
    """qwen_sampling_params"""

    _fields_ = [
        ("temperature", c_float),
        ("top_k", c_int32),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repeat_penalty", c_float),
        ("penalty_last_n", c_int32),
        ("seed", c_uint64),
        ("typical_p", c_float),
        ("presence_penalty", c_float),
        ("frequency_penalty", c_float),
    ]


class ChatMessage(Structure):
    """qwen_chat_message"""

    _fields_ = [("role", c_char_p), ("content", c_char_p)]


class ChatOptions(Structure):
    """qwen_chat_options"""

    _fields_ = [("enable_thinking", c_int32)]


class AudioParams(Structure):
    """qwen_audio_params"""

    _fields_ = [("max_seconds", c_double)]


class ImageParams(Structure):
    """qwen_image_params"""

    _fields_ = [("max_pixels", c_int64), ("apply_orientation", c_int32)]


class QuantizeParams(Structure):
    """qwen_quantize_params"""

    _fields_ = [("type", c_char_p), ("n_threads", c_int32), ("pure", c_int32)]


class Box(Structure):
    """qwen_box"""

    _fields_ = [("x1", c_int32), ("y1", c_int32), ("x2", c_int32), ("y2", c_int32), ("ref_offset", c_int32),
                ("ref_length", c_int32)]


# int (*qwen_token_callback)(int32_t token, const char *piece, void *user_data)
TOKEN_CALLBACK = CFUNCTYPE(c_int, c_int32, c_char_p, c_void_p)

_p = POINTER
_handle_out = _p(c_void_p)  # qwen_model **, qwen_context **, qwen_image **, qwen_audio **

# name: (restype, argtypes). Opaque handles are c_void_p.
REQUIRED: Dict[str, Tuple[Any, List[Any]]] = {
    "qwen_version": (c_char_p, []),
    "qwen_last_error": (c_char_p, []),
    "qwen_status_string": (c_char_p, [c_int]),
    "qwen_model_default_params": (ModelParams, []),
    "qwen_model_load": (c_int, [c_char_p, _p(ModelParams), _handle_out]),
    "qwen_model_free": (None, [c_void_p]),
    "qwen_model_n_vocab": (c_int32, [c_void_p]),
    "qwen_model_n_embd": (c_int32, [c_void_p]),
    "qwen_model_n_ctx_train": (c_int32, [c_void_p]),
    "qwen_token_is_eog": (c_int, [c_void_p, c_int32]),
    "qwen_model_info": (c_int, [c_void_p, _p(ModelDetails)]),
    "qwen_tokenize": (c_int, [c_void_p, c_char_p, c_int32, _p(c_int32), c_int32, _p(c_int32)]),
    "qwen_detokenize": (c_int, [c_void_p, _p(c_int32), c_int32, c_char_p, c_int32, _p(c_int32)]),
    "qwen_context_default_params": (ContextParams, []),
    "qwen_context_new": (c_int, [c_void_p, _p(ContextParams), _handle_out]),
    "qwen_context_free": (None, [c_void_p]),
    "qwen_context_reset": (c_int, [c_void_p]),
    "qwen_context_eval_tokens": (c_int, [c_void_p, _p(c_int32), c_int32, _p(c_float)]),
    "qwen_context_n_past": (c_int32, [c_void_p]),
    "qwen_context_n_ctx": (c_int32, [c_void_p]),
    "qwen_context_n_evaluated": (c_int64, [c_void_p]),
    "qwen_context_logits": (c_int, [c_void_p, _p(c_float), c_int32]),
    "qwen_context_embedding": (c_int, [c_void_p, _p(c_float), c_int32]),
    "qwen_context_state_size": (c_int64, [c_void_p]),
    "qwen_context_state_save": (c_int64, [c_void_p, c_void_p, c_int64]),
    "qwen_context_state_load": (c_int, [c_void_p, c_void_p, c_int64]),
    "qwen_context_state_save_file": (c_int, [c_void_p, c_char_p]),
    "qwen_context_state_load_file": (c_int, [c_void_p, c_char_p]),
    "qwen_context_cancel": (c_int, [c_void_p]),
    "qwen_sampling_default_params": (SamplingParams, []),
    "qwen_generate": (c_int, [c_void_p, _p(SamplingParams), c_int32, TOKEN_CALLBACK, c_void_p]),
    "qwen_generate_ex": (
        c_int,
        [c_void_p, _p(SamplingParams), c_int32, _p(c_char_p), c_int32, TOKEN_CALLBACK, c_void_p],
    ),
    "qwen_chat_eval": (c_int, [c_void_p, _p(ChatMessage), c_int32, c_int32]),
    "qwen_chat_apply_template": (
        c_int,
        [c_void_p, _p(ChatMessage), c_int32, c_int32, c_char_p, c_int32, _p(c_int32)],
    ),
    "qwen_chat_default_options": (ChatOptions, []),
    "qwen_chat_eval_ex": (c_int, [c_void_p, _p(ChatMessage), c_int32, c_int32, _p(ChatOptions)]),
}

# Newer parts of the API, bound only if the library exports them: quantization, vision, audio.
# qwen_image and qwen_audio are opaque.
OPTIONAL: Dict[str, Tuple[Any, List[Any]]] = {
    "qwen_quantize_default_params": (QuantizeParams, []),
    "qwen_model_quantize": (c_int, [c_char_p, c_char_p, _p(QuantizeParams)]),
    "qwen_model_export_projector": (c_int, [c_char_p, c_char_p, _p(QuantizeParams)]),
    "qwen_image_copy_rgb8": (c_int64, [c_void_p, _p(c_uint8), c_int64]),
    "qwen_grounding_boxes": (c_int32, [c_char_p, c_int32, c_int32, _p(Box), c_int32]),
    "qwen_model_load_projector": (c_int, [c_void_p, c_char_p]),
    "qwen_model_has_vision": (c_int, [c_void_p]),
    "qwen_model_has_audio": (c_int, [c_void_p]),
    "qwen_image_default_params": (ImageParams, []),
    "qwen_image_load": (c_int, [c_char_p, _handle_out]),
    "qwen_image_load_ex": (c_int, [c_char_p, _p(ImageParams), _handle_out]),
    "qwen_image_decode": (c_int, [c_void_p, c_int64, _p(ImageParams), _handle_out]),
    "qwen_image_from_rgb8": (c_int, [_p(c_uint8), c_int32, c_int32, _handle_out]),
    "qwen_image_free": (None, [c_void_p]),
    "qwen_image_width": (c_int32, [c_void_p]),
    "qwen_image_height": (c_int32, [c_void_p]),
    "qwen_image_set_pixel_bounds": (c_int, [c_void_p, c_int64, c_int64]),
    "qwen_image_n_tokens": (c_int32, [c_void_p, c_void_p]),
    "qwen_image_embed": (c_int, [c_void_p, c_void_p, _p(c_float), c_int64, _p(c_int32)]),
    "qwen_audio_default_params": (AudioParams, []),
    "qwen_audio_load": (c_int, [c_char_p, _handle_out]),
    "qwen_audio_load_ex": (c_int, [c_char_p, _p(AudioParams), _handle_out]),
    "qwen_audio_from_pcm_f32": (c_int, [_p(c_float), c_int64, c_int32, c_int32, _handle_out]),
    "qwen_audio_from_pcm_f32_ex": (c_int, [_p(c_float), c_int64, c_int32, c_int32, _p(AudioParams), _handle_out]),
    "qwen_audio_free": (None, [c_void_p]),
    "qwen_audio_duration": (c_double, [c_void_p]),
    "qwen_audio_n_tokens": (c_int32, [c_void_p, c_void_p]),
    "qwen_audio_embed": (c_int, [c_void_p, c_void_p, _p(c_float), c_int64, _p(c_int32)]),
    "qwen_context_eval_prompt": (
        c_int,
        [c_void_p, c_char_p, _p(c_void_p), c_int32, _p(c_void_p), c_int32, _p(c_float)],
    ),
    "qwen_chat_eval_media": (
        c_int,
        [c_void_p, _p(ChatMessage), c_int32, _p(c_void_p), c_int32, _p(c_void_p), c_int32, c_int32, _p(ChatOptions)],
    ),
}


class LibraryNotFoundError(OSError):
    """Raised when no usable ``libqwen.so`` can be found or loaded."""


_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None
_optional: Dict[str, Optional[Callable[..., Any]]] = {}


def _candidates() -> List[Tuple[str, str]]:
    """(path or name, where it came from) in lookup order."""
    found: List[Tuple[str, str]] = []
    bundled = Path(__file__).resolve().with_name("libqwen.so")
    if bundled.is_file():
        found.append((str(bundled), "bundled with the package"))
    found.append(("libqwen.so.0", "system library"))
    name = ctypes.util.find_library("qwen")
    if name and name != "libqwen.so.0":
        found.append((name, "system library (find_library)"))
    return found


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in REQUIRED.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryNotFoundError(f"{lib._name} does not export {name}: not a compatible libqwen") from e
        fn.restype = restype
        fn.argtypes = argtypes


def load(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads (once) and returns the library.

    Order: ``path`` if given, else the ``QWEN_LIBRARY`` environment variable (a file, or a folder holding
    ``libqwen.so``), else the copy bundled in the package, else the system's ``libqwen.so.0``.
    """
    global _lib, _lib_path
    with _lock:
        if _lib is not None:
            return _lib
        explicit = path or os.environ.get("QWEN_LIBRARY")
        if explicit:
            p = Path(explicit)
            if p.is_dir():
                p = p / "libqwen.so"
            try:
                lib = ctypes.CDLL(str(p))
            except OSError as e:
                raise LibraryNotFoundError(f"cannot load libqwen from {str(p)!r} (QWEN_LIBRARY): {e}") from e
            where = str(p)
        else:
            found: Optional[ctypes.CDLL] = None
            tried: List[str] = []
            where = ""
            for candidate, origin in _candidates():
                try:
                    found = ctypes.CDLL(candidate)
                    where = candidate
                    break
                except OSError as e:
                    tried.append(f"  {candidate} ({origin}): {e}")
            if found is None:
                raise LibraryNotFoundError(
                    "libqwen.so was not found. Set QWEN_LIBRARY to its path, reinstall the package with the "
                    "library bundled, or install it system-wide (scripts/install.sh). Tried:\n" + "\n".join(tried)
                )
            lib = found
        _declare(lib)
        _lib, _lib_path = lib, where
        return lib


def library_path() -> str:
    """Path (or soname) of the loaded library; loads it if needed."""
    load()
    assert _lib_path is not None
    return _lib_path


def optional(name: str) -> Optional[Callable[..., Any]]:
    """The function ``name`` of the vision/audio API with its types declared, or None if the library lacks it."""
    lib = load()
    with _lock:
        if name not in _optional:
            try:
                fn = getattr(lib, name)
            except AttributeError:
                _optional[name] = None
            else:
                restype, argtypes = OPTIONAL[name]
                fn.restype = restype
                fn.argtypes = argtypes
                _optional[name] = fn
        return _optional[name]


def has(*names: str) -> bool:
    """True if the library exports every one of ``names``."""
    return all(optional(n) is not None for n in names)


def int32_array(values: Sequence[int]) -> "ctypes.Array[c_int32]":
    """A C int32 array from ints (caller validated ranges)."""
    return (c_int32 * len(values))(*values)
