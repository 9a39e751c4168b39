#!/usr/bin/env python3
"""A random-weight Qwen2-Audio-7B audio tower for the audio benchmark (bench/audio/run.py).

The audio tower has the real shape of Qwen2-Audio-7B(-Instruct) (Whisper-large-v3 encoder: 128 mel bins, d_model 1280,
32 layers, 20 heads, FFN 5120, 1500 positions; projector 1280 -> 4096), transformers' default random init. The language
model is cut to one small layer of the real width 4096 (only its hidden size matters to the projector). Written as a
Hugging Face folder (F16 safetensors) with the tiny audio tokenizer of Tests/Fixtures/audio, then llama.cpp's converter
makes the text GGUF (F16) and the audio mmproj at F16 and Q8_0.

    HF_HUB_OFFLINE=1 .cache/fixtures-venv/bin/python bench/audio/make_models.py

Output: .cache/bench-audio/qwen2audio-7b-hf/, qwen2audio-7b-text-f16.gguf, mmproj-qwen2audio-7b-{f16,q8_0}.gguf (~3 GB).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import make_fixtures as mf  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from gguf_convert import convert  # noqa: E402
import make_audio_fixtures as af  # noqa: E402

OUT = ROOT / ".cache" / "bench-audio"
NAME = "qwen2audio-7b"
AUDIO = dict(num_mel_bins=128, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120, d_model=1280,
             max_source_positions=1500, activation_function="gelu", scale_embedding=False)


def build():
    import torch
    import transformers as T
    tc = dict(model_type="qwen2", vocab_size=mf.VOCAB_SIZE, hidden_size=4096, intermediate_size=512, num_hidden_layers=1,
              num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192, rms_norm_eps=1e-5,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=af.ENDOFTEXT,
              eos_token_id=af.IM_END, tie_word_embeddings=False)
    torch.manual_seed(0)
    m = T.Qwen2AudioForConditionalGeneration(T.Qwen2AudioConfig(audio_config=AUDIO, text_config=tc, audio_token_id=af.AUDIO))
    folder = OUT / f"{NAME}-hf"
    m.to(torch.float16).save_pretrained(folder)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        mf.rel_symlink(af.ATOK / f, folder / f)
    mf.rel_symlink(af.HF / "preprocessor_config.json", folder / "preprocessor_config.json")
    n = sum(p.numel() for p in m.model.audio_tower.parameters()) + sum(p.numel() for p in m.model.multi_modal_projector.parameters())
    print(f"{NAME}: audio tower + projector {n / 1e6:.1f} M parameters -> {folder}", flush=True)
    return folder


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / f"{NAME}-hf"
    if not (folder / "model.safetensors").exists() and not (folder / "model.safetensors.index.json").exists():
        build()
    convert(folder, OUT / f"{NAME}-text-f16.gguf", "f16")
    convert(folder, OUT / f"mmproj-{NAME}-f16.gguf", "f16", "--mmproj")
    convert(folder, OUT / f"mmproj-{NAME}-q8_0.gguf", "q8_0", "--mmproj")


if __name__ == "__main__":
    main()
