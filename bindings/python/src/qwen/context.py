"""qwen.Context: a KV cache over a model, for evaluation, generation and chat."""

from __future__ import annotations

import ctypes
import enum
import os
import queue
import threading
import weakref
from ctypes import POINTER, byref, c_char, c_char_p, c_float, c_int32, c_void_p
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union, overload

import numpy as np

from . import _lib, _util
from .errors import ContextFullError, check, error_from_status, required
from .media import Audio, Image, as_audio, as_image
from .model import Model, chat_message_array

if TYPE_CHECKING:
    from typing import Literal


class KVType(enum.IntEnum):
    """Storage of the KV cache (``qwen_kv_type``)."""

    F16 = _lib.QWEN_KV_F16
    F32 = _lib.QWEN_KV_F32
    Q8_0 = _lib.QWEN_KV_Q8_0


_KV_NAMES = {"f16": KVType.F16, "f32": KVType.F32, "q8_0": KVType.Q8_0, "q8": KVType.Q8_0}

DEFAULT_MAX_TOKENS = 256


def _float_ptr(a: np.ndarray) -> "ctypes._Pointer[c_float]":
    return a.ctypes.data_as(POINTER(c_float))


class _StreamState:
    """What the generation thread of a :class:`TextStream` shares with its consumer.

    The thread holds a reference to this object only (never to the TextStream), so a stream that its consumer
    drops is garbage-collected, and its finalizer stops the thread.
    """

    def __init__(self, run: Callable[[Any], int], ctx: "Context") -> None:
        self.run = run  # performs the C generation call with the C callback; returns its status
        self.ctx = ctx
        self.out: "queue.SimpleQueue[Tuple[str, Any, Any]]" = queue.SimpleQueue()  # thread -> consumer
        self.acks: "queue.SimpleQueue[bool]" = queue.SimpleQueue()  # consumer -> thread: continue?
        self.lock = threading.Lock()
        self.stopping = False
        self.in_c = False  # the thread is inside the C generation call
        self.parked = False  # ... and waiting in the callback for the consumer
        self.cancel_sent = False
        self.tokens: List[int] = []
        self.callback = _lib.TOKEN_CALLBACK(self.on_token)

    def on_token(self, token: int, piece: Optional[bytes], _user: Any) -> int:
        try:
            if token >= 0:
                self.tokens.append(token)
            if self.stopping:
                return 1
            text = piece.decode("utf-8", "replace") if piece else ""
            if token < 0 or not text:  # the final flush, or nothing visible yet: no handoff
                if text:
                    self.out.put(("piece", text, False))
                return 0
            with self.lock:
                self.parked = True
            self.out.put(("piece", text, True))
            go = self.acks.get()
            with self.lock:
                self.parked = False
            return 0 if go else 1
        except BaseException:  # never let an exception cross the C frames
            return 1

    def work(self) -> None:
        rc = _lib.QWEN_ERR_CANCELLED
        failure: Optional[BaseException] = None
        try:
            rc = self.run(self.callback)
            if rc == _lib.QWEN_ERR_CANCELLED and self.ctx._stale_cancel and not self.stopping and not self.tokens:
                self.ctx._stale_cancel = False  # a cancellation left over from an earlier stream: run again
                rc = self.run(self.callback)
            if rc < 0:
                failure = error_from_status(rc)  # same thread as the failing call
        except BaseException as e:  # pragma: no cover - ctypes errors
            failure = e
        finally:
            with self.lock:
                self.in_c = False
            self.out.put(("end", rc, failure))


class TextStream(_util.Closeable, Iterator[str]):
    """Iterator over the text pieces of a generation (``ctx.generate(stream=True)``, ``ctx.chat(stream=True)``).

    Generation runs on a worker thread in lockstep with the consumer: after handing over a piece it waits until
    the next one is asked for, so the context holds exactly what was delivered. :meth:`close` (also called when the
    stream is garbage-collected, e.g. after ``break`` or an exception in the loop, and by ``with``) stops generation:
    the waiting callback returns non-zero, and a thread still computing is stopped with ``qwen_context_cancel``.
    Any other call that changes the context (eval, generate, chat, reset, ...) closes an unfinished stream first;
    reads (``n_past``, ``logits()``, ...) raise RuntimeError while its generation runs. Errors of the generation
    (e.g. ContextFullError) are raised from the iteration.
    """

    def __init__(self, ctx: "Context", run: Callable[[Any], int]) -> None:
        self._state = _StreamState(run, ctx)
        self._ctx = ctx
        self._thread: Optional[threading.Thread] = None
        self._awaiting_ack = False
        self._done = False
        self._pieces: List[str] = []
        self.status: Optional[int] = None
        """Result of the C call once finished: tokens generated (>= 0) or a negative status."""

    # ---- iteration ----

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        s = self._state
        if self._thread is None:
            s.in_c = True
            self._thread = threading.Thread(target=s.work, name="qwen-generate", daemon=True)
            self._thread.start()
        if self._awaiting_ack:
            self._awaiting_ack = False
            s.acks.put(True)
        try:
            kind, value, extra = s.out.get()
        except BaseException:  # e.g. KeyboardInterrupt while waiting
            self.close()
            raise
        if kind == "piece":
            self._awaiting_ack = bool(extra)
            piece: str = value
            self._pieces.append(piece)
            return piece
        self._finish(value)
        if extra is not None:
            if isinstance(extra, ContextFullError):
                extra.partial_text = self.text
            raise extra
        raise StopIteration

    def _finish(self, rc: int) -> None:
        if self._thread is not None:
            self._thread.join()
        s = self._state
        self.status = rc
        self._done = True
        if s.cancel_sent and rc != _lib.QWEN_ERR_CANCELLED:
            s.ctx._stale_cancel = True  # the cancellation arrived after the call returned: it is still pending
        s.ctx._last_tokens = list(s.tokens)

    def close(self) -> None:
        """Stops generation (if running) and waits for the worker thread. Idempotent."""
        if self._done:
            return
        s = self._state
        if self._thread is None:  # never started
            self._done = True
            return
        s.stopping = True
        with s.lock:
            if s.in_c and not s.parked:
                handle = s.ctx._handle
                if handle is not None:
                    _lib.load().qwen_context_cancel(handle)
                    s.cancel_sent = True
        s.acks.put(False)  # wakes a callback waiting (or about to wait) for the consumer
        rc = _lib.QWEN_ERR_CANCELLED
        while True:
            kind, value, _ = s.out.get()
            if kind == "end":
                rc = value
                break
        self._finish(rc)

    # ---- results ----

    @property
    def done(self) -> bool:
        """True once generation ended or the stream was closed."""
        return self._done

    @property
    def started(self) -> bool:
        """True once iteration began (generation runs from then until ``done``)."""
        return self._thread is not None

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return "".join(self._pieces)

    @property
    def tokens(self) -> List[int]:
        """Ids of the tokens generated so far."""
        return list(self._state.tokens)


class Context(_util.HandleOwner):
    """A context of a model: a KV cache and scratch memory, used by one thread at a time.

    Args:
        model: the :class:`qwen.Model` (kept alive by the context).
        n_ctx: positions the KV cache holds (0: min(4096, the training length)).
        threads: threads of the forward pass (0: the model's setting, else all usable cores).
        n_batch: tokens per forward pass while evaluating prompts (0: the library default, 512).
        kv_type: ``"f16"`` (default), ``"f32"`` or ``"q8_0"`` (or a :class:`KVType`).
        sliding_window: when a chat outgrows ``n_ctx``, drop its oldest turns instead of raising ContextFullError.
    """

    def __init__(self, model: Model, n_ctx: int = 0, threads: int = 0, n_batch: int = 0,
                 kv_type: Union[str, int, KVType] = "f16", sliding_window: bool = False) -> None:
        self._handle: Optional[c_void_p] = None
        self._stream: Optional["weakref.ReferenceType[TextStream]"] = None
        self._stale_cancel = False
        self._last_tokens: List[int] = []
        if not isinstance(model, Model):
            raise TypeError(f"model must be a qwen.Model, not {type(model).__name__}")
        n_ctx = _util.integer(n_ctx, "n_ctx", 0)
        threads = _util.integer(threads, "threads", 0, 1024)
        n_batch = _util.integer(n_batch, "n_batch", 0)
        kv = self._kv_type(kv_type)
        window = _util.flag(sliding_window, "sliding_window")
        lib = _lib.load()
        params = lib.qwen_context_default_params()
        if n_ctx:
            params.n_ctx = n_ctx
        if threads:
            params.n_threads = threads
        if n_batch:
            params.n_batch = n_batch
        params.kv_type = int(kv)
        params.sliding_window = 1 if window else 0
        out = c_void_p()
        check(lib.qwen_context_new(model._require(), byref(params), byref(out)))
        self._handle = out
        self.model = model
        self.kv_type = kv
        self.sliding_window = window
        self._n_vocab = model.n_vocab
        self._n_embd = model.n_embd

    @staticmethod
    def _kv_type(value: Union[str, int, KVType]) -> KVType:
        if isinstance(value, str):
            try:
                return _KV_NAMES[value.lower()]
            except KeyError:
                raise ValueError(f"kv_type must be 'f16', 'f32' or 'q8_0', not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"kv_type must be a str or KVType, not {type(value).__name__}")
        try:
            return KVType(value)
        except ValueError:
            raise ValueError(f"unknown kv_type {value}") from None

    # ---- lifetime ----

    def close(self) -> None:
        """Stops a running stream and releases the context (idempotent). The model stays open."""
        stream = self._stream() if self._stream is not None else None
        if stream is not None:
            stream.close()
        self._free_handle("qwen_context_free")

    def __repr__(self) -> str:
        if self._handle is None:
            return "<qwen.Context (closed)>"
        try:
            return f"<qwen.Context n_past={self.n_past} n_ctx={self.n_ctx} kv={self.kv_type.name}>"
        except RuntimeError:
            return f"<qwen.Context (streaming) kv={self.kv_type.name}>"

    def _require(self, reading: bool = False) -> c_void_p:
        """The handle, for a call on this thread. An unfinished stream of this context is closed first (its
        generation stops where its consumer left it), except for reads, which raise RuntimeError while the
        stream's generation runs."""
        if self._handle is None:
            raise ValueError("the context is closed")
        stream = self._stream() if self._stream is not None else None
        if stream is not None and not stream.done:
            if reading and stream.started:
                raise RuntimeError("the context is generating for a stream: finish or close() the stream first")
            if not reading:
                stream.close()
            if self._handle is None:
                raise ValueError("the context is closed")
        return self._handle

    def _run(self, fn: Callable[..., int], *args: Any) -> int:
        """Calls fn(*args), raising QwenError on failure; reruns once a call that only consumed a cancellation
        left pending by a stream closed just as its generation ended (such calls fail before doing any work)."""
        rc: int = fn(*args)
        if rc == _lib.QWEN_ERR_CANCELLED and self._stale_cancel:
            self._stale_cancel = False
            rc = fn(*args)
        return check(rc)

    # ---- state ----

    @property
    def n_past(self) -> int:
        """Tokens in the KV cache."""
        return check(_lib.load().qwen_context_n_past(self._require(reading=True)))

    @property
    def n_ctx(self) -> int:
        """Capacity of the KV cache in tokens."""
        return check(_lib.load().qwen_context_n_ctx(self._require(reading=True)))

    @property
    def n_evaluated(self) -> int:
        """Tokens run through the model since the context was created (reused prefixes are not counted)."""
        return check(_lib.load().qwen_context_n_evaluated(self._require(reading=True)))

    @property
    def last_tokens(self) -> List[int]:
        """Ids of the tokens of the last generation."""
        return list(self._last_tokens)

    def reset(self) -> None:
        """Empties the KV cache (and clears a pending cancellation)."""
        check(_lib.load().qwen_context_reset(self._require()))
        self._stale_cancel = False

    def cancel(self) -> None:
        """Makes the running call on this context (or, if none, the next one) raise CancelledError soon.

        The only method that may be called from another thread while the context is in use. No-op once closed.
        """
        handle = self._handle
        if handle is not None:
            self._stale_cancel = False
            check(_lib.load().qwen_context_cancel(handle))

    # ---- evaluation ----

    def eval_tokens(self, tokens: Sequence[int]) -> np.ndarray:
        """Appends tokens at the next positions and returns the last position's logits (float32, ``(n_vocab,)``).

        Raises:
            QwenError: ``QWEN_ERR_INVALID_ARGUMENT`` for ids outside the vocabulary, ContextFullError if the tokens
                do not fit (then nothing is evaluated).
        """
        ids = _util.token_list(tokens)
        if not ids:
            raise ValueError("tokens is empty")
        handle = self._require()
        logits = np.empty(self._n_vocab, dtype=np.float32)
        self._run(_lib.load().qwen_context_eval_tokens, handle, _lib.int32_array(ids), len(ids), _float_ptr(logits))
        return logits

    def eval_text(self, text: str, special: bool = True) -> np.ndarray:
        """Tokenizes ``text`` (special-token markers parsed by default) and evaluates it; returns the logits."""
        return self.eval_tokens(self.model.tokenize(text, special=special))

    def logits(self) -> np.ndarray:
        """The logits of the last evaluated position (float32, ``(n_vocab,)``)."""
        handle = self._require(reading=True)
        out = np.empty(self._n_vocab, dtype=np.float32)
        n = check(_lib.load().qwen_context_logits(handle, _float_ptr(out), out.size))
        return out[:n]

    def embedding(self) -> np.ndarray:
        """The final hidden state (after the output norm) of the last evaluated position (float32, ``(n_embd,)``)."""
        handle = self._require(reading=True)
        out = np.empty(self._n_embd, dtype=np.float32)
        n = check(_lib.load().qwen_context_embedding(handle, _float_ptr(out), out.size))
        return out[:n]

    # ---- saving and restoring ----

    def save_state(self) -> bytes:
        """The context's state (tokens, KV cache, last logits) as bytes, for :meth:`load_state`."""
        handle = self._require(reading=True)
        lib = _lib.load()
        size = check(lib.qwen_context_state_size(handle))
        buf = ctypes.create_string_buffer(max(size, 1))
        n = check(lib.qwen_context_state_save(handle, buf, size))
        return buf.raw[:n]

    def load_state(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Restores a state from :meth:`save_state` (same model shape and KV type; else InvalidArgumentError)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"state must be bytes-like, not {type(data).__name__}")
        handle = self._require()
        raw = bytes(data)
        buf = (c_char * max(len(raw), 1)).from_buffer_copy(raw or b"\0")
        check(_lib.load().qwen_context_state_load(handle, buf, len(raw)))
        self._stale_cancel = False

    def save_state_file(self, path: _util.PathLike) -> None:
        """Saves the state to a file."""
        raw = _util.path_bytes(path, "path")
        check(_lib.load().qwen_context_state_save_file(self._require(reading=True), raw))

    def load_state_file(self, path: _util.PathLike) -> None:
        """Restores a state saved with :meth:`save_state_file`."""
        raw = _util.path_bytes(path, "path")
        check(_lib.load().qwen_context_state_load_file(self._require(), raw))

    # ---- generation ----

    @staticmethod
    def sampling_params(temperature: Optional[float] = None, top_k: Optional[int] = None,
                        top_p: Optional[float] = None, min_p: Optional[float] = None,
                        repeat_penalty: Optional[float] = None, penalty_last_n: Optional[int] = None,
                        seed: Optional[int] = None, typical_p: Optional[float] = None,
                        presence_penalty: Optional[float] = None,
                        frequency_penalty: Optional[float] = None) -> _lib.SamplingParams:
        """``qwen_sampling_params``: the library's defaults with the given fields replaced (None keeps a default)."""
        sp: _lib.SamplingParams = _lib.load().qwen_sampling_default_params()
        for name, value in (("temperature", temperature), ("top_p", top_p), ("min_p", min_p),
                            ("repeat_penalty", repeat_penalty), ("typical_p", typical_p),
                            ("presence_penalty", presence_penalty), ("frequency_penalty", frequency_penalty)):
            if value is not None:
                setattr(sp, name, _util.number(value, name))
        if top_k is not None:
            sp.top_k = _util.integer(top_k, "top_k")
        if penalty_last_n is not None:
            sp.penalty_last_n = _util.integer(penalty_last_n, "penalty_last_n")
        if seed is not None:
            sp.seed = _util.integer(seed, "seed", 0, _lib.UINT64_MAX)
        return sp

    @overload
    def generate(self, max_tokens: int = ..., *, temperature: Optional[float] = ..., top_k: Optional[int] = ...,
                 top_p: Optional[float] = ..., min_p: Optional[float] = ..., repeat_penalty: Optional[float] = ...,
                 penalty_last_n: Optional[int] = ..., seed: Optional[int] = ..., typical_p: Optional[float] = ...,
                 presence_penalty: Optional[float] = ..., frequency_penalty: Optional[float] = ...,
                 stop: Optional[Sequence[str]] = ..., stream: "Literal[False]" = ...) -> str: ...

    @overload
    def generate(self, max_tokens: int = ..., *, temperature: Optional[float] = ..., top_k: Optional[int] = ...,
                 top_p: Optional[float] = ..., min_p: Optional[float] = ..., repeat_penalty: Optional[float] = ...,
                 penalty_last_n: Optional[int] = ..., seed: Optional[int] = ..., typical_p: Optional[float] = ...,
                 presence_penalty: Optional[float] = ..., frequency_penalty: Optional[float] = ...,
                 stop: Optional[Sequence[str]] = ..., stream: "Literal[True]") -> TextStream: ...

    @overload
    def generate(self, max_tokens: int = ..., *, temperature: Optional[float] = ..., top_k: Optional[int] = ...,
                 top_p: Optional[float] = ..., min_p: Optional[float] = ..., repeat_penalty: Optional[float] = ...,
                 penalty_last_n: Optional[int] = ..., seed: Optional[int] = ..., typical_p: Optional[float] = ...,
                 presence_penalty: Optional[float] = ..., frequency_penalty: Optional[float] = ...,
                 stop: Optional[Sequence[str]] = ..., stream: bool) -> Union[str, TextStream]: ...

    def generate(self, max_tokens: int = DEFAULT_MAX_TOKENS, *, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, min_p: Optional[float] = None,
                 repeat_penalty: Optional[float] = None, penalty_last_n: Optional[int] = None,
                 seed: Optional[int] = None, typical_p: Optional[float] = None,
                 presence_penalty: Optional[float] = None, frequency_penalty: Optional[float] = None,
                 stop: Optional[Sequence[str]] = None, stream: bool = False) -> Union[str, TextStream]:
        """Samples up to ``max_tokens`` tokens after what the context holds (evaluate a prompt first).

        Stops at an end-of-generation token, or where the text reaches one of the ``stop`` strings (not included).
        Sampling fields left as None keep the library's defaults (temperature 0.8, top_k 40, top_p 0.95,
        min_p 0.05, no penalties, a random seed); ``temperature=0`` is greedy.

        Returns:
            the generated text, or with ``stream=True`` a :class:`TextStream` of its pieces.

        Raises:
            ContextFullError: the context filled up (``partial_text`` holds what was generated);
            CancelledError: :meth:`cancel` was called.
        """
        n = _util.integer(max_tokens, "max_tokens", 0)
        sp = self.sampling_params(temperature, top_k, top_p, min_p, repeat_penalty, penalty_last_n, seed, typical_p,
                                  presence_penalty, frequency_penalty)
        stops = _util.string_list(stop, "stop string")
        is_stream = _util.flag(stream, "stream")
        handle = self._require()
        stop_arr = (c_char_p * max(len(stops), 1))(*stops)
        lib = _lib.load()

        def run(callback: Any) -> int:
            rc: int = lib.qwen_generate_ex(handle, byref(sp), n, stop_arr, len(stops), callback, None)
            return rc

        if is_stream:
            text_stream = TextStream(self, run)
            self._stream = weakref.ref(text_stream)
            return text_stream

        pieces: List[bytes] = []
        tokens: List[int] = []
        failures: List[BaseException] = []

        def on_token(token: int, piece: Optional[bytes], _user: Any) -> int:
            try:
                if token >= 0:
                    tokens.append(token)
                if piece:
                    pieces.append(piece)
                return 0
            except BaseException as e:  # e.g. KeyboardInterrupt delivered inside the callback
                failures.append(e)
                return 1

        callback = _lib.TOKEN_CALLBACK(on_token)
        try:
            self._run(run, callback)
        except ContextFullError as e:
            e.partial_text = b"".join(pieces).decode("utf-8", "replace")
            raise
        finally:
            self._last_tokens = tokens
        if failures:
            raise failures[0]
        text: str = b"".join(pieces).decode("utf-8", "replace")
        return text

    # ---- chat ----

    def eval_chat(self, messages: Sequence[_util.Message], images: Optional[Sequence[Any]] = None,
                  audio: Optional[Sequence[Any]] = None, *, add_generation_prompt: bool = True,
                  enable_thinking: bool = True) -> None:
        """Applies the chat template to the whole conversation and evaluates what is not cached yet
        (``qwen_chat_eval_ex``, or ``qwen_chat_eval_media`` with media): pass the full history every turn.

        Args:
            messages: ``{"role", "content"}`` dicts or ``(role, content)`` pairs.
            images, audio: media of the whole conversation, in the order of their markers (see :meth:`chat`).
            add_generation_prompt: append the assistant header.
            enable_thinking: Qwen3: let the model reason in a ``<think>`` block (False: answer directly).
        """
        msgs = _util.messages(messages)
        add = 1 if _util.flag(add_generation_prompt, "add_generation_prompt") else 0
        think = _util.flag(enable_thinking, "enable_thinking")
        image_list = _media_list(images, "images")
        audio_list = _media_list(audio, "audio")
        lib = _lib.load()
        opts = lib.qwen_chat_default_options()
        opts.enable_thinking = 1 if think else 0
        if not image_list and not audio_list:
            arr = chat_message_array([(role, content) for role, content, _ in msgs])
            self._run(lib.qwen_chat_eval_ex, self._require(), arr, len(arr), add, byref(opts))
            return
        fn = required("chats with images or audio", "qwen_chat_eval_media")
        contents = [content for _, content, _ in msgs]
        _insert_markers(msgs, contents, len(image_list), ("<image>", "<|image_pad|>"))
        _insert_markers(msgs, contents, len(audio_list), ("<audio>", "<|AUDIO|>"))
        arr = chat_message_array([(role, text) for (role, _, _), text in zip(msgs, contents)])
        with _MediaSet(image_list, audio_list) as media:
            self._run(fn, self._require(), arr, len(arr), media.images, media.n_images, media.audios, media.n_audios,
                      add, byref(opts))

    @overload
    def chat(self, messages: Sequence[_util.Message], images: Optional[Sequence[Any]] = ...,
             audio: Optional[Sequence[Any]] = ..., *, stream: "Literal[False]" = ..., **kwargs: Any) -> str: ...

    @overload
    def chat(self, messages: Sequence[_util.Message], images: Optional[Sequence[Any]] = ...,
             audio: Optional[Sequence[Any]] = ..., *, stream: "Literal[True]", **kwargs: Any) -> TextStream: ...

    @overload
    def chat(self, messages: Sequence[_util.Message], images: Optional[Sequence[Any]] = ...,
             audio: Optional[Sequence[Any]] = ..., *, stream: bool, **kwargs: Any) -> Union[str, TextStream]: ...

    def chat(self, messages: Sequence[_util.Message], images: Optional[Sequence[Any]] = None,
             audio: Optional[Sequence[Any]] = None, *, stream: bool = False, enable_thinking: bool = True,
             max_tokens: int = DEFAULT_MAX_TOKENS, stop: Optional[Sequence[str]] = None,
             **sampling: Any) -> Union[str, TextStream]:
        """Evaluates the conversation (only what is not cached) and generates the assistant's reply.

        Multi-turn: keep one context and pass the whole history (earlier replies included) every turn; the
        cached prefix is reused.

        Media (vision and audio models): message contents hold ``<image>`` / ``<audio>`` markers (or the model's own
        ``<|vision_start|><|image_pad|><|vision_end|>`` / ``<|audio_bos|><|AUDIO|><|audio_eos|>`` syntax), and
        ``images`` / ``audio`` list the media of the whole conversation in the order of the markers. Pass all of
        them every turn (earlier ones are not encoded again). If the conversation has no marker of a kind, the
        markers for all media of that kind are put at the start of the first user message.

        Args:
            messages: ``{"role", "content"}`` dicts or ``(role, content)`` pairs.
            images: :class:`qwen.Image` objects, paths, encoded bytes, PIL images or numpy arrays.
            audio: :class:`qwen.Audio` objects, paths or ``(samples, sample_rate)`` pairs.
            stream: return a :class:`TextStream` of text pieces instead of the text.
            enable_thinking: Qwen3: allow a ``<think>`` block before the answer.
            max_tokens, stop, sampling: as for :meth:`generate`.
        """
        self.eval_chat(messages, images, audio, enable_thinking=enable_thinking)
        return self.generate(max_tokens, stop=stop, stream=stream, **sampling)

    # ---- media ----

    def _embed(self, fn_name: str, feature: str, media: Tuple[Union[Image, Audio], bool]) -> np.ndarray:
        """Embeddings of an image or clip from :func:`as_image` / :func:`as_audio` (closed here if converted)."""
        item, owned = media
        try:
            handle = item.handle
            fn = required(feature, fn_name)
            ctx = self._require()
            n_tokens = c_int32(0)
            rc = fn(ctx, handle, None, 0, byref(n_tokens))
            if rc < 0 and rc != _lib.QWEN_ERR_BUFFER_TOO_SMALL:
                check(rc)
            out = np.empty((max(n_tokens.value, 0), self._n_embd), dtype=np.float32)
            check(fn(ctx, handle, _float_ptr(out), out.size, byref(n_tokens)))
            return out[: n_tokens.value]
        finally:
            if owned:
                item.close()

    def embed_image(self, image: Any) -> np.ndarray:
        """The image's embeddings as the language model takes them: float32 ``(n_tokens, n_embd)``.

        ``image`` is a :class:`qwen.Image`, a path, a PIL image or a numpy array; needs a projector (``mmproj``).
        """
        return self._embed("qwen_image_embed", "vision", as_image(image))

    def embed_audio(self, audio: Any) -> np.ndarray:
        """The clip's embeddings: float32 ``(n_tokens, n_embd)``. ``audio`` is a :class:`qwen.Audio`, a path or
        a ``(samples, sample_rate)`` pair."""
        return self._embed("qwen_audio_embed", "audio", as_audio(audio))

    def eval_prompt(self, text: str, images: Optional[Sequence[Any]] = None,
                    audio: Optional[Sequence[Any]] = None) -> np.ndarray:
        """Evaluates text in the model's own prompt syntax with media placeholders (``qwen_context_eval_prompt``),
        after what the context holds: ``<|vision_start|><|image_pad|><|vision_end|>`` per image,
        ``<|audio_bos|><|AUDIO|><|audio_eos|>`` per clip, in the order of ``images`` and ``audio``.
        Returns the last position's logits."""
        fn = required("prompts with media", "qwen_context_eval_prompt")
        raw = _util.text_bytes(text, "text")
        image_list = _media_list(images, "images")
        audio_list = _media_list(audio, "audio")
        logits = np.empty(self._n_vocab, dtype=np.float32)
        with _MediaSet(image_list, audio_list) as media:
            self._run(fn, self._require(), raw, media.images, media.n_images, media.audios, media.n_audios,
                      _float_ptr(logits))
        return logits


def _media_list(items: Optional[Sequence[Any]], name: str) -> List[Any]:
    if items is None:
        return []
    if isinstance(items, (str, bytes, os.PathLike, Image, Audio, np.ndarray)) or hasattr(items, "convert"):
        raise TypeError(f"{name} must be a list")
    return list(items)


def _insert_markers(msgs: List[Tuple[str, str, Any]], contents: List[str], count: int, markers: Tuple[str, str]) -> None:
    """Puts ``count`` markers at the start of the first user message if no message has a marker of this kind."""
    if count == 0 or any(m in c for c in contents for m in markers):
        return
    index = next((i for i, (role, _, _) in enumerate(msgs) if role == "user"), len(msgs) - 1)
    contents[index] = markers[0] * count + contents[index]


class _MediaSet:
    """qwen_image / qwen_audio handle arrays for a call; converts paths, arrays, ... and frees what it made."""

    def __init__(self, images: List[Any], audio: List[Any]) -> None:
        self._owned: List[Union[Image, Audio]] = []
        try:
            imgs = [self._keep(*as_image(i)) for i in images]
            clips = [self._keep(*as_audio(a)) for a in audio]
        except BaseException:
            self.close()
            raise
        self.n_images, self.n_audios = len(imgs), len(clips)
        self.images = (c_void_p * max(len(imgs), 1))(*[i.handle for i in imgs])
        self.audios = (c_void_p * max(len(clips), 1))(*[a.handle for a in clips])

    def _keep(self, item: Any, owned: bool) -> Any:
        if owned:
            self._owned.append(item)
        return item

    def close(self) -> None:
        for o in self._owned:
            o.close()
        self._owned = []

    def __enter__(self) -> "_MediaSet":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Context", "KVType", "TextStream"]
