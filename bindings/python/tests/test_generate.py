"""Generation: greedy vs transformers, streaming, stop strings, sampling, cancellation, errors."""

from __future__ import annotations

import gc
import threading

import pytest

import qwen

from conftest import CHAT, CHAT_IDS, greedy_reference


def test_greedy_matches_transformers(ctx: qwen.Context, model: qwen.Model) -> None:
    ctx.eval_tokens(CHAT_IDS)
    text = ctx.generate(32, temperature=0)
    assert ctx.last_tokens == greedy_reference()
    assert text == model.detokenize(greedy_reference())
    assert ctx.n_past == 67 + 32


def test_stream_equals_non_stream(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    text = ctx.generate(32, temperature=0)
    tokens = ctx.last_tokens
    ctx.eval_chat(CHAT)  # back to the prompt (the cached prefix is reused)
    stream = ctx.generate(32, temperature=0, stream=True)
    assert isinstance(stream, qwen.TextStream)
    pieces = list(stream)
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == text == stream.text
    assert ctx.last_tokens == tokens == stream.tokens == greedy_reference()
    assert stream.done and stream.status == 32


def test_seeded_sampling_is_reproducible(ctx: qwen.Context) -> None:
    runs = []
    for seed in [7, 7, 8]:
        ctx.eval_chat(CHAT)
        runs.append((ctx.generate(16, seed=seed, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0), ctx.last_tokens))
    assert runs[0] == runs[1]
    assert runs[0][1] != runs[2][1]
    ctx.eval_chat(CHAT)
    streamed = "".join(ctx.generate(16, seed=7, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, stream=True))
    assert streamed == runs[0][0]


def test_all_sampling_options(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    text = ctx.generate(8, temperature=0.7, top_k=20, top_p=0.9, min_p=0.01, repeat_penalty=1.1, penalty_last_n=32,
                        seed=3, typical_p=0.5, presence_penalty=0.5, frequency_penalty=0.5)
    assert isinstance(text, str)
    with pytest.raises(qwen.QwenError) as info:
        ctx.generate(4, typical_p=0.0)
    assert info.value.status_name == "QWEN_ERR_INVALID_ARGUMENT"
    with pytest.raises(TypeError):
        ctx.generate(4, temperature="hot")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ctx.generate(4, top_k=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ctx.generate(4, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        ctx.generate(-1)
    with pytest.raises(ValueError):
        ctx.generate(4, seed=-1)
    with pytest.raises(TypeError):
        ctx.generate(4, stop=[1])  # type: ignore[list-item]


def test_generate_needs_a_prompt(ctx: qwen.Context) -> None:
    with pytest.raises(qwen.InvalidArgumentError):
        ctx.generate(4)
    with pytest.raises(qwen.InvalidArgumentError):
        list(ctx.generate(4, stream=True))  # the error surfaces from the iteration
    ctx.eval_tokens([1, 2])
    assert isinstance(ctx.generate(2), str)


def test_stop_strings(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    full = ctx.generate(24, temperature=0)
    assert len(full) > 6
    stop = full[len(full) // 2: len(full) // 2 + 3]
    expected = full[: full.find(stop)]
    ctx.eval_chat(CHAT)
    assert ctx.generate(24, temperature=0, stop=["\x01never", stop]) == expected
    ctx.eval_chat(CHAT)
    assert "".join(ctx.generate(24, temperature=0, stop=stop, stream=True)) == expected  # a single str works too
    ctx.eval_chat(CHAT)
    assert ctx.generate(24, temperature=0, stop=[]) == full


def test_context_full_during_generation(model: qwen.Model) -> None:
    with model.context(n_ctx=72, kv_type="f32") as c:
        c.eval_tokens(CHAT_IDS)
        with pytest.raises(qwen.ContextFullError) as info:
            c.generate(20, temperature=0)
        full_text = model.detokenize(greedy_reference())
        assert info.value.partial_text and full_text.startswith(info.value.partial_text)
        assert c.n_past == 72
        c.reset()
        c.eval_tokens(CHAT_IDS)
        pieces = []
        with pytest.raises(qwen.ContextFullError) as info:
            for piece in c.generate(20, temperature=0, stream=True):
                pieces.append(piece)
        assert "".join(pieces) == info.value.partial_text
        assert c.n_past == 72


def _generation_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "qwen-generate")


def test_stream_break_stops_generation(ctx: qwen.Context) -> None:
    before = _generation_threads()
    ctx.eval_chat(CHAT)
    received = []
    for piece in ctx.generate(100, temperature=0, stream=True):
        received.append(piece)
        if len(received) == 3:
            break
    gc.collect()
    assert _generation_threads() == before
    # the context holds exactly the delivered tokens, and is usable again
    assert ctx.n_past == 67 + 3 and ctx.last_tokens == greedy_reference()[:3]
    ctx.eval_chat(CHAT)
    assert ctx.generate(3, temperature=0) == "".join(received)


def test_stream_exception_in_consumer(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)

    def consume() -> None:
        for i, _ in enumerate(ctx.generate(100, temperature=0, stream=True)):
            if i == 1:
                raise KeyError("consumer failed")

    with pytest.raises(KeyError):
        consume()
    gc.collect()
    assert _generation_threads() == 0
    assert ctx.n_past == 67 + 2
    assert isinstance(ctx.generate(2, temperature=0), str)


def test_stream_close_and_context_manager(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    with ctx.generate(100, temperature=0, stream=True) as stream:
        first = next(stream)
        with pytest.raises(RuntimeError):  # no reads while the stream's generation runs
            ctx.n_past
        with pytest.raises(RuntimeError):
            ctx.logits()
    assert stream.done and first
    assert list(stream) == []
    stream.close()  # idempotent
    assert ctx.n_past == 68

    unused = ctx.generate(10, stream=True)  # never iterated: dropping it frees the context
    del unused
    assert ctx.n_past == 68
    never = ctx.generate(10, stream=True)
    never.close()
    assert ctx.n_past == 68


def test_abandoned_stream_is_collected(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    stream = ctx.generate(100, temperature=0, stream=True)
    next(stream)
    assert _generation_threads() == 1
    del stream
    gc.collect()
    assert _generation_threads() == 0
    assert ctx.n_past == 68


def test_close_context_while_streaming(model: qwen.Model) -> None:
    c = model.context(n_ctx=128)
    c.eval_chat(CHAT)
    stream = c.generate(100, stream=True)
    next(stream)
    c.close()
    assert stream.done and _generation_threads() == 0


def test_cancel_from_consumer_thread(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    stream = ctx.generate(100, temperature=0, stream=True)
    next(stream)
    ctx.cancel()  # allowed while the stream runs
    with pytest.raises(qwen.CancelledError) as info:
        list(stream)
    assert info.value.status_name == "QWEN_ERR_CANCELLED"
    assert _generation_threads() == 0
    ctx.eval_chat(CHAT)
    assert len(ctx.generate(4, temperature=0)) > 0


def test_cancel_from_another_thread(model: qwen.Model) -> None:
    with model.context(n_ctx=4096, sliding_window=True) as c:
        c.eval_chat(CHAT)
        started = threading.Event()
        result = {}

        def run() -> None:
            try:
                for _ in c.generate(1_000_000, stream=True):
                    started.set()
            except qwen.CancelledError as e:
                result["error"] = e

        t = threading.Thread(target=run)
        t.start()
        assert started.wait(30)
        c.cancel()
        t.join(30)
        assert not t.is_alive() and isinstance(result.get("error"), qwen.CancelledError)


def test_pending_cancel_applies_to_the_next_call(ctx: qwen.Context) -> None:
    ctx.cancel()
    with pytest.raises(qwen.CancelledError):
        ctx.eval_tokens(CHAT_IDS)
    assert ctx.n_past == 0
    ctx.eval_tokens(CHAT_IDS)
    ctx.cancel()
    ctx.reset()  # clears it
    ctx.eval_tokens(CHAT_IDS)


def test_stale_cancel_of_a_closed_stream_is_absorbed(ctx: qwen.Context) -> None:
    # A stream closed just as its generation returned leaves the cancellation pending in the library; the
    # binding remembers that and reruns the next call that only consumed it.
    from qwen import _lib

    _lib.load().qwen_context_cancel(ctx._handle)
    ctx._stale_cancel = True
    ctx.eval_tokens(CHAT_IDS)
    assert ctx.n_past == 67 and not ctx._stale_cancel


def test_next_call_closes_an_unfinished_stream(ctx: qwen.Context) -> None:
    ctx.eval_chat(CHAT)
    stream = ctx.generate(100, temperature=0, stream=True)
    for i, _ in enumerate(stream):
        if i == 1:
            break
    assert not stream.done  # still referenced: not collected
    reply = ctx.chat(CHAT, max_tokens=4, temperature=0)  # closes it first
    assert stream.done and list(stream) == [] and stream.text + "" != "" and isinstance(reply, str)
    assert ctx.last_tokens == greedy_reference()[:4]
    assert _generation_threads() == 0
    created = ctx.generate(5, stream=True)  # not started: reads are fine, and it stays usable
    assert ctx.n_past == 67 + 4
    assert len(list(created)) > 0
