"""qwen.Model: loading, description, tokenizer, chat template, errors, lifetime."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

import qwen

from conftest import CHAT, CHAT_IDS, CHAT_TEXT, FIXTURES, N_EMBD, N_VOCAB, TINY_F32, TINY_Q8


def test_info(model: qwen.Model) -> None:
    info = model.info
    assert isinstance(info, qwen.ModelInfo)
    assert info.architecture == "qwen2" and info.weight_type == "F32"
    assert (info.n_vocab, info.n_embd, info.n_layer, info.n_head, info.n_head_kv, info.head_dim) == (N_VOCAB, N_EMBD, 2, 4, 2, 16)
    assert info.n_params > 0 and info.n_bytes == 4 * info.n_params
    assert (info.token_eos, info.token_eot, info.token_pad) == (2050, 2050, 2048)
    assert model.n_vocab == N_VOCAB and model.n_embd == N_EMBD and model.n_ctx_train == 32768
    assert "qwen2" in repr(model)


def test_tokenize_matches_transformers(model: qwen.Model) -> None:
    assert model.tokenize(CHAT_TEXT, special=True) == CHAT_IDS
    assert model.detokenize(CHAT_IDS) == CHAT_TEXT
    assert model.detokenize(np.array(CHAT_IDS, dtype=np.int64)) == CHAT_TEXT


def test_tokenize_special(model: qwen.Model) -> None:
    assert model.tokenize("<|im_start|>", special=True) == [2049]
    plain = model.tokenize("<|im_start|>")
    assert len(plain) > 1 and model.detokenize(plain) == "<|im_start|>"
    assert model.tokenize("") == []
    assert model.detokenize([]) == ""


def test_tokenize_round_trip_unicode(model: qwen.Model) -> None:
    for text in ["héllo wörld", "数学 🐍 emoji 👩‍👩‍👧", "tabs\tand\nnewlines  ", "x" * 5000]:
        assert model.detokenize(model.tokenize(text)) == text


def test_detokenize_partial_utf8(model: qwen.Model) -> None:
    ids = model.tokenize("🐍")
    assert len(ids) > 1
    assert model.detokenize_bytes(ids[:1]) == "🐍".encode()[: len(model.detokenize_bytes(ids[:1]))]
    assert "\ufffd" in model.detokenize(ids[:1])


def test_is_eog(model: qwen.Model) -> None:
    assert model.is_eog(2050) and model.is_eog(2048) and not model.is_eog(82)


def test_chat_template(model: qwen.Model) -> None:
    assert model.apply_chat_template(CHAT) == CHAT_TEXT
    pairs = [(m["role"], m["content"]) for m in CHAT]
    assert model.apply_chat_template(pairs) == CHAT_TEXT
    assert model.apply_chat_template(CHAT, add_generation_prompt=False) == CHAT_TEXT[: -len("<|im_start|>assistant\n")]
    no_system = model.apply_chat_template(CHAT[1:])
    assert no_system.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n")


def test_chat_template_argument_errors(model: qwen.Model) -> None:
    with pytest.raises(ValueError):
        model.apply_chat_template([])
    with pytest.raises(TypeError):
        model.apply_chat_template("hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        model.apply_chat_template([{"role": "user", "content": 5}])
    with pytest.raises(ValueError):
        model.apply_chat_template([{"role": "user"}])
    with pytest.raises(ValueError):
        model.apply_chat_template([("", "x")])


def test_missing_file() -> None:
    with pytest.raises(qwen.QwenError) as info:
        qwen.Model("/nonexistent/model.gguf")
    e = info.value
    assert e.status == -2 and e.status_name == "QWEN_ERR_IO"
    assert "/nonexistent/model.gguf" in e.message and "QWEN_ERR_IO" in str(e)
    assert isinstance(e, qwen.FileIOError)


def test_malformed_files(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(TINY_Q8.read_bytes()[:4000])
    with pytest.raises(qwen.FormatError) as info:
        qwen.Model(cut)
    assert info.value.status_name == "QWEN_ERR_FORMAT"
    junk = tmp_path / "junk.gguf"
    junk.write_text("this is not a model, just some text that is long enough to be read as a header")
    with pytest.raises(qwen.QwenError):
        qwen.Model(str(junk))


def test_argument_errors(model: qwen.Model) -> None:
    with pytest.raises(TypeError):
        qwen.Model(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        qwen.Model(TINY_Q8, threads=-1)
    with pytest.raises(TypeError):
        qwen.Model(TINY_Q8, threads="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        model.tokenize(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        model.tokenize("nul\0byte")
    with pytest.raises(TypeError):
        model.detokenize(["a"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        model.detokenize("abc")  # type: ignore[arg-type]
    with pytest.raises(qwen.QwenError) as info:
        model.detokenize([5, 999999])
    assert info.value.status_name == "QWEN_ERR_INVALID_ARGUMENT"
    assert not model.is_eog(-5)
    with pytest.raises(ValueError):
        model.is_eog(2**33)


def test_hf_folder_without_mmap() -> None:
    with qwen.Model(FIXTURES / "tiny" / "qwen25-hf", use_mmap=False, threads=1) as m:
        assert m.n_vocab == N_VOCAB
        assert m.tokenize(CHAT_TEXT, special=True) == CHAT_IDS


def test_close_is_idempotent() -> None:
    m = qwen.Model(TINY_Q8)
    with m as same:
        assert same is m
        assert not m.closed
    assert m.closed
    m.close()
    m.close()
    assert "closed" in repr(m)
    with pytest.raises(ValueError):
        m.tokenize("x")
    with pytest.raises(ValueError):
        m.context()
    m2 = qwen.Model(TINY_Q8)
    del m2
    gc.collect()


def test_context_keeps_model_alive() -> None:
    m = qwen.Model(TINY_Q8)
    ctx = m.context(n_ctx=128)
    m.close()
    ctx.eval_chat(CHAT)
    assert len(ctx.generate(4, temperature=0)) >= 0
    ctx.close()
    ctx.close()


def test_quantize(tmp_path: Path) -> None:
    from qwen import _lib

    if not _lib.has("qwen_model_quantize"):
        pytest.skip("the library has no quantization API")
    out = tmp_path / "q8.gguf"
    qwen.quantize(TINY_F32, out, type="Q8_0", threads=1)
    with qwen.Model(out) as m:
        assert m.info.weight_type == "Q8_0" and m.tokenize(CHAT_TEXT, special=True) == CHAT_IDS
    with pytest.raises(qwen.UnsupportedError):
        qwen.quantize(TINY_F32, tmp_path / "x.gguf", type="Q9_9")
    with pytest.raises(qwen.QwenError) as info:
        qwen.quantize(tmp_path / "missing.gguf", tmp_path / "y.gguf")
    assert info.value.status_name == "QWEN_ERR_IO"
