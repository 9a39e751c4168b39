"""Chat: evaluation with the template, multi-turn prefix reuse, thinking, sliding window, streaming."""

from __future__ import annotations

import pytest

import qwen

from conftest import CHAT, QWEN3


def test_chat_equals_eval_and_generate(ctx: qwen.Context) -> None:
    reply = ctx.chat(CHAT, max_tokens=8, temperature=0)
    ctx.reset()
    ctx.eval_tokens(ctx.model.tokenize(ctx.model.apply_chat_template(CHAT), special=True))
    assert ctx.generate(8, temperature=0) == reply
    ctx.reset()
    assert "".join(ctx.chat(CHAT, max_tokens=8, temperature=0, stream=True)) == reply
    pairs = [(m["role"], m["content"]) for m in CHAT]
    assert ctx.chat(pairs, max_tokens=8, temperature=0) == reply


def test_multi_turn_evaluates_only_the_new_part(ctx: qwen.Context) -> None:
    turns = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"},
             {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "What is two plus two?"}]
    ctx.eval_chat(turns[:2])
    first = ctx.n_evaluated
    assert first == ctx.n_past
    ctx.eval_chat(turns)
    second = ctx.n_evaluated - first
    assert 0 < second < ctx.n_past - first + 2
    ctx.eval_chat(turns)
    assert ctx.n_evaluated == first + second  # an unchanged conversation costs nothing


def test_multi_turn_with_generated_replies(model: qwen.Model) -> None:
    with model.context(n_ctx=512, kv_type="f32") as c:
        history = [{"role": "user", "content": "Hello!"}]
        reply = c.chat(history, max_tokens=8, temperature=0)
        history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "And then?"}]
        before = c.n_evaluated
        c.chat(history, max_tokens=8, temperature=0)
        new_part = model.tokenize("<|im_end|>\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n", special=True)
        evaluated = c.n_evaluated - before - len(c.last_tokens)
        whole = len(model.tokenize(model.apply_chat_template(history), special=True))
        assert evaluated <= len(new_part) + 2 < whole


def test_thinking_switch() -> None:
    with qwen.Model(QWEN3) as m, m.context(n_ctx=256) as c:
        c.eval_chat(CHAT)
        assert c.n_past == 67
        c.eval_chat(CHAT, enable_thinking=False)
        assert c.n_past == 71  # + "<think>\n\n</think>\n\n"
        assert isinstance(c.chat(CHAT, enable_thinking=False, max_tokens=4), str)
        with pytest.raises(TypeError):
            c.eval_chat(CHAT, enable_thinking="no")  # type: ignore[arg-type]


def _long_chat() -> list:
    chat = [{"role": "system", "content": "You are terse."}]
    for i in range(1, 25):
        text = f"Question {i}: what is {i} + {i}?" if i % 2 else f"The answer is {i}."
        chat.append({"role": "user" if i % 2 else "assistant", "content": text})
    return chat


def test_sliding_window(model: qwen.Model) -> None:
    with model.context(n_ctx=128) as c:
        with pytest.raises(qwen.ContextFullError):
            c.chat(_long_chat())
    with model.context(n_ctx=128, sliding_window=True) as c:
        c.eval_chat(_long_chat())
        assert c.n_past < 128
        c.generate(150, temperature=0)  # slides instead of failing


def test_media_needs_a_library_with_vision_and_audio(ctx: qwen.Context) -> None:
    if qwen.has_vision() and qwen.has_audio():
        pytest.skip("the library has the vision and audio API")
    with pytest.raises(qwen.MissingFeatureError) as info:
        ctx.chat(CHAT, images=["/nonexistent.png"], audio=["/nonexistent.wav"])
    e = info.value
    assert isinstance(e, qwen.QwenError) and isinstance(e, NotImplementedError)
    assert e.status_name == "QWEN_ERR_UNSUPPORTED"
    assert ctx.n_past == 0
