"""qwen.Model: a loaded model (weights, tokenizer, chat template)."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_int32, c_void_p
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from . import _lib, _util
from .errors import check, missing, required

if TYPE_CHECKING:
    from .context import Context


@dataclass(frozen=True)
class ModelInfo:
    """Description of a model (``qwen_model_details``)."""

    architecture: str
    """"qwen2", "qwen3", "qwen3moe", ..."""
    weight_type: str
    """the file's quantization mix ("Q4_K_M", "Q8_0", ...), else the main weight type"""
    n_params: int
    n_bytes: int
    n_ctx_train: int
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    token_bos: int
    """-1 if the model has none (also for the other token fields)"""
    token_eos: int
    token_eot: int
    """<|im_end|>"""
    token_pad: int


def chat_message_array(items: Sequence[Any]) -> "ctypes.Array[_lib.ChatMessage]":
    """A qwen_chat_message array from messages (the bytes stay referenced by the array)."""
    msgs = _util.messages(items)
    arr = (_lib.ChatMessage * len(msgs))()
    for i, (role, content, _) in enumerate(msgs):
        arr[i].role = role.encode("utf-8")
        arr[i].content = content.encode("utf-8")
    return arr


class Model(_util.HandleOwner):
    """A model loaded from a GGUF file or a Hugging Face folder.

    A model is immutable and may be shared by contexts used on different threads. Free it with
    :meth:`close` (or use it as a context manager); contexts made from it keep it alive.

    Args:
        path: a ``.gguf`` file or a Hugging Face folder (``config.json``, ``*.safetensors``, ``tokenizer.json``).
        mmproj: a multimodal projector (vision/audio encoder) file, loaded with ``qwen_model_load_projector``.
        threads: default threads of contexts that set none (0: the cores this process may use).
        use_mmap: memory-map the weights (default) instead of reading them into memory.

    Raises:
        QwenError: e.g. status ``QWEN_ERR_IO`` for a missing file, ``QWEN_ERR_FORMAT`` for a malformed one.
    """

    def __init__(self, path: _util.PathLike, mmproj: Optional[_util.PathLike] = None, threads: int = 0,
                 use_mmap: bool = True) -> None:
        self._handle: Optional[c_void_p] = None
        raw_path = _util.path_bytes(path, "path")
        raw_mmproj = _util.path_bytes(mmproj, "mmproj") if mmproj is not None else None
        n_threads = _util.integer(threads, "threads", 0, 1024)
        mmap = _util.flag(use_mmap, "use_mmap")
        lib = _lib.load()
        params = lib.qwen_model_default_params()
        params.n_threads = n_threads
        params.use_mmap = 1 if mmap else 0
        out = c_void_p()
        check(lib.qwen_model_load(raw_path, byref(params), byref(out)))
        self._handle = out
        self.path = path
        try:
            details = _lib.ModelDetails()
            check(lib.qwen_model_info(out, byref(details)))
            self._info = ModelInfo(
                architecture=details.architecture.decode("utf-8", "replace"),
                weight_type=details.weight_type.decode("utf-8", "replace"),
                n_params=details.n_params, n_bytes=details.n_bytes, n_ctx_train=details.n_ctx_train,
                n_vocab=details.n_vocab, n_embd=details.n_embd, n_layer=details.n_layer, n_head=details.n_head,
                n_head_kv=details.n_head_kv, head_dim=details.head_dim, token_bos=details.token_bos,
                token_eos=details.token_eos, token_eot=details.token_eot, token_pad=details.token_pad)
            self._n_vocab = check(lib.qwen_model_n_vocab(out))
            self._n_embd = check(lib.qwen_model_n_embd(out))
            self._n_ctx_train = check(lib.qwen_model_n_ctx_train(out))
            self.mmproj: Optional[_util.PathLike] = None
            if raw_mmproj is not None:
                self.load_projector(mmproj)  # type: ignore[arg-type]
        except BaseException:
            self.close()
            raise

    # ---- lifetime ----

    def close(self) -> None:
        """Releases the model (idempotent). Contexts made from it stay usable until they are closed."""
        self._free_handle("qwen_model_free")

    def __repr__(self) -> str:
        if self._handle is None:
            return "<qwen.Model (closed)>"
        i = self._info
        return f"<qwen.Model {i.architecture} {i.weight_type} {i.n_params / 1e6:.1f}M params from {self.path!s}>"

    def _require(self) -> c_void_p:
        if self._handle is None:
            raise ValueError("the model is closed")
        return self._handle

    # ---- description ----

    @property
    def info(self) -> ModelInfo:
        """Architecture, weight type, sizes and special tokens."""
        self._require()
        return self._info

    @property
    def n_vocab(self) -> int:
        """Logits per position (the output head's rows; may exceed the tokenizer's token count)."""
        self._require()
        return self._n_vocab

    @property
    def n_embd(self) -> int:
        """Hidden size."""
        self._require()
        return self._n_embd

    @property
    def n_ctx_train(self) -> int:
        """Context length the model was trained with."""
        self._require()
        return self._n_ctx_train

    @property
    def has_vision(self) -> bool:
        """True if the model takes images (a vision tower from its folder, or a projector)."""
        return self._has("qwen_model_has_vision")

    @property
    def has_audio(self) -> bool:
        """True if the model takes audio (an audio tower from its folder, or a projector)."""
        return self._has("qwen_model_has_audio")

    def _has(self, fn_name: str) -> bool:
        """The answer of qwen_model_has_vision / _audio; False from a library without them."""
        fn = _lib.optional(fn_name)
        if fn is None:
            return False
        return bool(check(fn(self._require())))

    def is_eog(self, token: int) -> bool:
        """True if ``token`` ends a generation (end-of-text, ``<|im_end|>``)."""
        t = _util.integer(token, "token")
        return bool(check(_lib.load().qwen_token_is_eog(self._require(), t)))

    # ---- tokenizer ----

    def tokenize(self, text: str, special: bool = False) -> List[int]:
        """Token ids of ``text``; ``special=True`` turns marker text such as ``"<|im_start|>"`` into those tokens."""
        raw = _util.text_bytes(text, "text")
        parse = 1 if _util.flag(special, "special") else 0
        lib = _lib.load()
        handle = self._require()
        capacity = len(raw) + 8  # byte-level BPE: never more tokens than bytes
        while True:
            buf = (c_int32 * capacity)()
            needed = c_int32(0)
            rc = lib.qwen_tokenize(handle, raw, parse, buf, capacity, byref(needed))
            if rc == _lib.QWEN_ERR_BUFFER_TOO_SMALL and needed.value > capacity:
                capacity = needed.value
                continue
            check(rc)
            return list(buf[:rc])

    def detokenize_bytes(self, tokens: Sequence[int]) -> bytes:
        """The bytes of ``tokens`` (special tokens as their text); may end inside a UTF-8 character."""
        ids = _util.token_list(tokens)
        lib = _lib.load()
        handle = self._require()
        arr = _lib.int32_array(ids)
        capacity = 16 * len(ids) + 16
        while True:
            buf = ctypes.create_string_buffer(capacity)
            needed = c_int32(0)
            rc = lib.qwen_detokenize(handle, arr, len(ids), buf, capacity, byref(needed))
            if rc == _lib.QWEN_ERR_BUFFER_TOO_SMALL and needed.value > capacity:
                capacity = needed.value + 1
                continue
            check(rc)
            return buf.raw[:rc]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``; bytes that are not valid UTF-8 (a character cut in two) become U+FFFD."""
        return self.detokenize_bytes(tokens).decode("utf-8", "replace")

    # ---- chat ----

    def apply_chat_template(self, messages: Sequence[_util.Message], add_generation_prompt: bool = True) -> str:
        """Renders a conversation with the model's chat template (ChatML, with the model's default system
        message if its template has one).

        Args:
            messages: ``{"role": ..., "content": ...}`` dicts or ``(role, content)`` pairs.
            add_generation_prompt: append the assistant header.
        """
        arr = chat_message_array(messages)
        add = 1 if _util.flag(add_generation_prompt, "add_generation_prompt") else 0
        lib = _lib.load()
        handle = self._require()
        capacity = 4096
        while True:
            buf = ctypes.create_string_buffer(capacity)
            needed = c_int32(0)
            rc = lib.qwen_chat_apply_template(handle, arr, len(arr), add, buf, capacity, byref(needed))
            if rc == _lib.QWEN_ERR_BUFFER_TOO_SMALL and needed.value >= capacity:
                capacity = needed.value + 1
                continue
            check(rc)
            return buf.raw[:rc].decode("utf-8", "replace")

    # ---- contexts and media ----

    def context(self, **params: Any) -> "Context":
        """A new :class:`qwen.Context` of this model; ``params`` as for :class:`qwen.Context`."""
        from .context import Context

        return Context(self, **params)

    def load_projector(self, path: _util.PathLike) -> None:
        """Loads a multimodal projector (``mmproj``) so contexts can embed images and audio."""
        raw = _util.path_bytes(path, "mmproj")
        fn = required("vision/audio", "qwen_model_load_projector")
        check(fn(self._require(), raw))
        self.mmproj = path


def quantize(input: _util.PathLike, output: _util.PathLike, type: str = "Q8_0", threads: int = 0,
             pure: bool = False) -> None:
    """Writes the GGUF file ``input`` as a GGUF file of another weight type at ``output`` (``qwen_model_quantize``,
    as llama.cpp's llama-quantize does).

    Args:
        type: llama.cpp's file type name: "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K",
            "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K" (case ignored).
        threads: 0 = the cores this process may use.
        pure: every quantizable tensor gets the type's default block type (no per-tensor mix choices).

    Raises:
        QwenError: ``QWEN_ERR_IO``, ``QWEN_ERR_FORMAT``, ``QWEN_ERR_UNSUPPORTED`` (an unknown type name).
    """
    _convert("quantization", "qwen_model_quantize", input, output, type, threads, _util.flag(pure, "pure"))


def _convert(feature: str, fn_name: str, input: _util.PathLike, output: _util.PathLike, type: str, threads: int,
             pure: bool) -> None:
    """Calls a conversion function of the C API (``qwen_model_quantize`` or ``qwen_model_export_projector``)."""
    raw_in = _util.path_bytes(input, "input")
    raw_out = _util.path_bytes(output, "output")
    raw_type = _util.text_bytes(type, "type")
    n_threads = _util.integer(threads, "threads", 0, 1024)
    defaults = _lib.optional("qwen_quantize_default_params")
    fn = _lib.optional(fn_name)
    if defaults is None or fn is None:
        raise missing(feature, fn_name)
    params = defaults()
    params.type = raw_type
    params.n_threads = n_threads
    params.pure = 1 if pure else 0
    check(fn(raw_in, raw_out, byref(params)))


def export_projector(input: _util.PathLike, output: _util.PathLike, type: str = "Q8_0", threads: int = 0) -> None:
    """Writes the encoder of a first-generation Qwen-VL or Qwen-Audio Hugging Face folder as a projector GGUF
    (``qwen_model_export_projector``), to load with :meth:`Model.load_projector` beside the text GGUF that
    :func:`quantize` writes from the same folder.

    Raises:
        QwenError: ``QWEN_ERR_IO``, ``QWEN_ERR_FORMAT``, ``QWEN_ERR_UNSUPPORTED`` (another kind of folder, an unknown
            type name).
    """
    _convert("projector export", "qwen_model_export_projector", input, output, type, threads, False)


__all__ = ["Model", "ModelInfo", "export_projector", "quantize"]
