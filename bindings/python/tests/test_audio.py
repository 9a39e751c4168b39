"""Audio (Qwen2-Audio): clips from files and samples, their embeddings against transformers."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import qwen

from conftest import FIXTURES, TINY_Q8

AUDIO = FIXTURES / "audio"
SPEECH = AUDIO / "inputs" / "speech.wav"

pytestmark = pytest.mark.skipif(not qwen.has_audio(), reason="the library has no audio API")


def speech_samples() -> "tuple[np.ndarray, int]":
    with wave.open(str(SPEECH)) as w:
        assert w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
        return pcm, w.getframerate()


def reference_rows(tag: str, clip: str) -> np.ndarray:
    index = json.loads((AUDIO / "refs" / "model.json").read_text())
    entry = index[tag]["towers"][clip]["projected"]
    blob = np.fromfile(AUDIO / "refs" / "model.f32", dtype=np.float32)
    return blob[entry["offset"]: entry["offset"] + entry["count"]].reshape(entry["shape"])


@pytest.fixture(scope="module")
def audio_model() -> "Iterator[qwen.Model]":
    with qwen.Model(AUDIO / "qwen2audio-hf") as m:
        yield m


def test_embedding_matches_transformers(audio_model: qwen.Model) -> None:
    with qwen.Audio(SPEECH) as clip, audio_model.context(n_ctx=512, threads=2) as ctx:
        frames = speech_samples()[0].shape[0]
        assert clip.duration == pytest.approx(frames / 22050, abs=1e-3)
        rows = ctx.embed_audio(clip)
        assert rows.dtype == np.float32 and rows.shape == (129, audio_model.n_embd)
        assert clip.n_tokens(audio_model) == 129
        assert np.max(np.abs(rows - reference_rows("hf", "speech"))) < 1e-3
        # a path works directly, and gives the same rows
        assert np.array_equal(ctx.embed_audio(str(SPEECH)), rows)


def test_samples_equal_the_file(audio_model: qwen.Model) -> None:
    pcm, rate = speech_samples()
    with audio_model.context(n_ctx=512) as ctx:
        from_file = ctx.embed_audio(SPEECH)
        with qwen.Audio(pcm, rate) as clip:  # int16 PCM, scaled as libsndfile does
            assert clip.sample_rate == rate and clip.channels == 1 and clip.n_frames == pcm.shape[0]
            assert np.max(np.abs(ctx.embed_audio(clip) - from_file)) < 1e-4
        floats = pcm[:, 0].astype(np.float32) / 32768
        assert np.max(np.abs(ctx.embed_audio((floats, rate)) - from_file)) < 1e-4
        stereo = np.stack([floats, floats], axis=1)  # mono = the mean of the channels
        assert np.max(np.abs(ctx.embed_audio(qwen.Audio.from_samples(stereo, rate)) - from_file)) < 1e-4


def test_audio_errors(audio_model: qwen.Model, tmp_path: Path) -> None:
    with pytest.raises(qwen.QwenError) as info:
        qwen.Audio(tmp_path / "missing.wav")
    assert info.value.status_name == "QWEN_ERR_IO"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(qwen.FormatError):
        qwen.Audio(junk)
    with pytest.raises(qwen.InvalidArgumentError):
        qwen.Audio(SPEECH, max_seconds=1.0)  # the clip is 5.2 s
    with pytest.raises(qwen.InvalidArgumentError):
        qwen.Audio(np.full(16000, np.nan, dtype=np.float32), 16000)
    with pytest.raises(TypeError):
        qwen.Audio(np.zeros(16000, dtype=np.float32))  # no rate
    with pytest.raises(ValueError):
        qwen.Audio(SPEECH, 16000)
    assert qwen.Audio(SPEECH, max_seconds=10).duration > 5
    with audio_model.context(n_ctx=512) as ctx:
        with pytest.raises(qwen.InvalidArgumentError):  # under 20 ms gives no row
            ctx.embed_audio((np.zeros(100, dtype=np.float32), 16000))


def test_model_without_audio() -> None:
    with qwen.Model(TINY_Q8) as m, m.context(n_ctx=64) as ctx, qwen.Audio(SPEECH) as clip:
        with pytest.raises(qwen.UnsupportedError):
            ctx.embed_audio(clip)
        with pytest.raises(qwen.QwenError) as info:
            clip.n_tokens(m)
        assert info.value.status_name == "QWEN_ERR_UNSUPPORTED"


def test_close_is_idempotent() -> None:
    clip = qwen.Audio(SPEECH)
    with clip:
        assert clip.duration > 0
    clip.close()
    with pytest.raises(ValueError):
        clip.duration


def clip37() -> np.ndarray:
    """The generated 3.7 s clip of the fixtures (scripts/fixtures/make_audio_fixtures.py), as 16 kHz int16 mono."""
    rate, tenths = 16000, 37
    n, dur = tenths * rate // 10, tenths / 10
    state, noise = 12345, np.empty(n)
    for i in range(n):
        state = (state * 1103515245 + 12345) % (1 << 31)
        noise[i] = state / (1 << 31) - 0.5
    t = np.arange(n) / rate
    gate = np.where((t >= 0.2 * dur) & (t < 0.25 * dur), 0.0, 1.0)
    fm = 0.35 * np.sin(2 * np.pi * 220.0 * t + 3.0 * np.sin(2 * np.pi * 0.7 * t))
    chirp = 0.25 * np.sin(2 * np.pi * (300.0 * t + (1600.0 / dur) * t * t))
    x = (fm + chirp + 0.08 * noise) * gate
    return np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)


def two_clips_case() -> dict:
    index = json.loads((AUDIO / "refs" / "model.json").read_text())
    case = next(p for p in index["hf"]["prompts"] if p["name"] == "hf_two_clips")
    entry = case["last_logits"]
    blob = np.fromfile(AUDIO / "refs" / "model.f32", dtype=np.float32)
    case["last_row"] = blob[entry["offset"]: entry["offset"] + entry["count"]].reshape(entry["shape"])[-1]
    return case


def test_prompt_with_two_clips_matches_transformers(audio_model: qwen.Model) -> None:
    case = two_clips_case()
    with audio_model.context(n_ctx=512, kv_type="f32") as ctx:
        logits = ctx.eval_prompt(case["rendered_text"], audio=[SPEECH, (clip37(), 16000)])
        assert ctx.n_past == len(case["input_ids"])
        assert np.max(np.abs(logits - case["last_row"])) < 1e-3
        ctx.generate(16, temperature=0)
        assert ctx.last_tokens == case["greedy"]


def test_chat_with_two_clips(audio_model: qwen.Model) -> None:
    case = two_clips_case()
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "<audio><audio>Compare the two recordings."}]
    with audio_model.context(n_ctx=512, kv_type="f32") as ctx:
        text = ctx.chat(messages, audio=[qwen.Audio(SPEECH), (clip37(), 16000)], max_tokens=16, temperature=0)
        assert ctx.last_tokens == case["greedy"] and text == audio_model.detokenize(case["greedy"])
        assert ctx.n_past == len(case["input_ids"]) + 16
        # next turn: the clips are not evaluated again
        before = ctx.n_evaluated
        history = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": "Why?"}]
        ctx.chat(history, audio=[SPEECH, (clip37(), 16000)], max_tokens=2, temperature=0)
        assert ctx.n_evaluated - before < 40
        with pytest.raises(qwen.InvalidArgumentError):  # two markers, one clip
            ctx.chat(messages, audio=[SPEECH])


def test_cli_with_audio(tmp_path: Path) -> None:
    import subprocess
    import sys

    case = two_clips_case()
    clip = tmp_path / "clip37.wav"
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(clip37().astype("<i2").tobytes())
    r = subprocess.run([sys.executable, "-m", "qwen", "-m", str(AUDIO / "qwen2audio-hf"), "-s", "You are a helpful assistant.",
                        "-p", "Compare the two recordings.", "--audio", str(SPEECH), "--audio", str(clip), "-n", "16",
                        "--temp", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with qwen.Model(AUDIO / "qwen2audio-hf") as m:
        assert r.stdout == m.detokenize(case["greedy"]) + "\n"


def test_projector_for_a_gguf() -> None:
    with qwen.Model(AUDIO / "qwen2audio-f16.gguf", mmproj=AUDIO / "mmproj-qwen2audio-f16.gguf") as m:
        with m.context(n_ctx=512) as c, qwen.Audio(SPEECH) as clip:
            assert clip.n_tokens(m) == 129
            rows = c.embed_audio(clip)
            index = json.loads((AUDIO / "refs" / "model.json").read_text())
            entry = index["mmproj"]["towers"]["speech"]["projected"]
            blob = np.fromfile(AUDIO / "refs" / "model.f32", dtype=np.float32)
            expected = blob[entry["offset"]: entry["offset"] + entry["count"]].reshape(entry["shape"])
            assert np.max(np.abs(rows - expected)) < 1e-3
