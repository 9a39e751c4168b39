"""qwen.Context: evaluation, logits, embeddings, state, errors, lifetime."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

import qwen

from conftest import CHAT, CHAT_IDS, N_EMBD, N_VOCAB, reference_last_hidden, reference_last_logits


def test_logits_match_transformers(ctx: qwen.Context) -> None:
    assert ctx.n_ctx == 128 and ctx.n_past == 0 and ctx.n_evaluated == 0
    logits = ctx.eval_tokens(CHAT_IDS)
    assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (N_VOCAB,)
    assert ctx.n_past == 67 and ctx.n_evaluated == 67
    assert np.max(np.abs(logits - reference_last_logits())) < 1e-3
    assert np.array_equal(ctx.logits(), logits)


def test_embedding_matches_transformers(ctx: qwen.Context) -> None:
    ctx.eval_tokens(CHAT_IDS)
    emb = ctx.embedding()
    assert emb.dtype == np.float32 and emb.shape == (N_EMBD,)
    assert np.max(np.abs(emb - reference_last_hidden())) < 1e-3


def test_deterministic_and_incremental(model: qwen.Model) -> None:
    with model.context(n_ctx=128, kv_type="f32") as a, model.context(n_ctx=128, kv_type="f32") as b:
        whole = a.eval_tokens(CHAT_IDS)
        b.eval_tokens(CHAT_IDS[:30])
        b.eval_tokens(np.array(CHAT_IDS[30:60], dtype=np.int32))
        parts = b.eval_tokens(CHAT_IDS[60:])
        assert np.max(np.abs(whole - parts)) < 1e-4
        a.reset()
        assert a.n_past == 0
        assert np.array_equal(a.eval_tokens(CHAT_IDS), whole)
        assert a.n_evaluated == 2 * 67


def test_kv_types(model: qwen.Model) -> None:
    ref = None
    for kv in ["f32", "f16", qwen.KVType.F16]:
        with model.context(n_ctx=128, kv_type=kv) as c:
            logits = c.eval_tokens(CHAT_IDS)
            if ref is None:
                ref = logits
            assert int(np.argmax(logits)) == int(np.argmax(ref))
            assert np.max(np.abs(logits - ref)) < 0.1
    with pytest.raises(qwen.UnsupportedError) as info:  # the tiny model's head size (16) is not a multiple of 32
        model.context(kv_type="q8_0")
    assert "Q8_0" in info.value.message
    with pytest.raises(ValueError):
        model.context(kv_type="f8")
    with pytest.raises(TypeError):
        model.context(kv_type=1.5)


def test_eval_errors(ctx: qwen.Context) -> None:
    with pytest.raises(qwen.QwenError) as info:
        ctx.logits()  # nothing evaluated yet
    assert info.value.status_name == "QWEN_ERR_INVALID_ARGUMENT"
    with pytest.raises(qwen.QwenError) as info:
        ctx.eval_tokens([1, 5000])
    assert info.value.status == -1 and info.value.status_name == "QWEN_ERR_INVALID_ARGUMENT"
    assert "5000" in info.value.message
    with pytest.raises(qwen.InvalidArgumentError):
        ctx.eval_tokens([-3])
    assert ctx.n_past == 0
    with pytest.raises(ValueError):
        ctx.eval_tokens([])
    with pytest.raises(ValueError):
        ctx.eval_tokens([2**40])
    with pytest.raises(TypeError):
        ctx.eval_tokens([1.5])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        ctx.eval_tokens("hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ctx.eval_tokens(np.zeros((2, 2), dtype=np.int32))


def test_context_full(model: qwen.Model) -> None:
    with model.context(n_ctx=32) as c:
        with pytest.raises(qwen.ContextFullError) as info:
            c.eval_tokens(CHAT_IDS)
        assert info.value.status_name == "QWEN_ERR_CONTEXT_FULL" and isinstance(info.value, qwen.QwenError)
        assert c.n_past == 0
        c.eval_tokens(CHAT_IDS[:32])
        with pytest.raises(qwen.ContextFullError):
            c.eval_tokens([1])


def test_context_argument_errors(model: qwen.Model) -> None:
    with pytest.raises(TypeError):
        qwen.Context("model")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        model.context(n_ctx=-1)
    with pytest.raises(TypeError):
        model.context(n_ctx=1.5)
    with pytest.raises(TypeError):
        model.context(bogus=1)


def test_state_round_trip(model: qwen.Model, tmp_path: Path) -> None:
    with model.context(n_ctx=128, kv_type="f32") as a, model.context(n_ctx=128, kv_type="f32") as b:
        a.eval_chat(CHAT)
        logits = a.logits()
        state = a.save_state()
        assert isinstance(state, bytes) and len(state) > 0
        b.eval_chat([{"role": "user", "content": "unrelated"}])
        b.load_state(state)
        assert b.n_past == 67
        assert np.array_equal(b.logits(), logits)
        assert a.generate(8, temperature=0) == b.generate(8, temperature=0)
        assert a.last_tokens == b.last_tokens and len(a.last_tokens) == 8
        with pytest.raises(qwen.FormatError):
            b.load_state(state[:-5])
        with pytest.raises(TypeError):
            b.load_state("text")  # type: ignore[arg-type]

        path = tmp_path / "state.bin"
        a.save_state_file(path)
        b.reset()
        b.load_state_file(str(path))
        assert b.n_past == a.n_past
        assert np.array_equal(b.logits(), a.logits())
        with pytest.raises(qwen.QwenError) as info:
            b.load_state_file(tmp_path / "missing")
        assert info.value.status_name == "QWEN_ERR_IO"
    with model.context(n_ctx=128, kv_type="f16") as c:
        with pytest.raises(qwen.InvalidArgumentError):
            c.load_state(state)  # another KV cache type


def test_close_is_idempotent(model: qwen.Model) -> None:
    c = model.context(n_ctx=64)
    with c as same:
        assert same is c
        same.eval_tokens([1, 2, 3])
    assert c.closed and "closed" in repr(c)
    c.close()
    c.cancel()  # no-op once closed
    with pytest.raises(ValueError):
        c.n_past
    with pytest.raises(ValueError):
        c.eval_tokens([1])
    c2 = model.context(n_ctx=64)
    del c2
    gc.collect()
    assert not model.closed
