#!/usr/bin/env python3
"""Random-weight Qwen2-VL-2B / Qwen2.5-VL-3B vision towers for the vision benchmark (bench/vision/run.sh).

The vision towers have the real shapes (Qwen2-VL-2B-Instruct: embed 1280, 32 blocks, 16 heads, MLP 5120, merger to 1536;
Qwen2.5-VL-3B-Instruct: hidden 1280, 32 blocks, 16 heads, SwiGLU 3420, windows of 112 px with full attention at blocks
7/15/23/31, merger to 2048), transformers' default random init. The language model is cut to one small layer (only its
hidden size matters to the projector). Written as a Hugging Face folder (F16 safetensors), then llama.cpp's converter
makes the text GGUF (F16) and the mmproj at F16 and Q8_0.

    HF_HUB_OFFLINE=1 .cache/fixtures-venv/bin/python bench/vision/make_models.py [qwen2vl-2b qwen25vl-3b]

Output: .cache/bench-vision/NAME-hf/, NAME-text-f16.gguf, mmproj-NAME-f16.gguf, mmproj-NAME-q8_0.gguf (~3.4 GB per model).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import make_fixtures as mf  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from gguf_convert import convert  # noqa: E402

OUT = ROOT / ".cache" / "bench-vision"
SHAPES = {
    "qwen2vl-2b": dict(kind="qwen2_vl", hidden=1536, heads=12,
                       vision=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4,
                                   hidden_act="quick_gelu", in_channels=3, patch_size=14, spatial_merge_size=2,
                                   temporal_patch_size=2)),
    "qwen25vl-3b": dict(kind="qwen2_5_vl", hidden=2048, heads=16,
                        vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, out_hidden_size=2048, num_heads=16,
                                    hidden_act="silu", in_channels=3, patch_size=14, spatial_merge_size=2,
                                    temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
                                    tokens_per_second=2)),
}


def build(name):
    import torch
    import transformers as T
    s = SHAPES[name]
    sp = mf.special_ids()
    tc = dict(vocab_size=mf.VOCAB_SIZE, hidden_size=s["hidden"], intermediate_size=512, num_hidden_layers=1,
              num_attention_heads=s["heads"], num_key_value_heads=2, head_dim=128, max_position_embeddings=32768,
              rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
              bos_token_id=sp["<|endoftext|>"], eos_token_id=sp["<|im_end|>"])
    ids = dict(image_token_id=sp["<|image_pad|>"], video_token_id=sp["<|video_pad|>"],
               vision_start_token_id=sp["<|vision_start|>"], vision_end_token_id=sp["<|vision_end|>"])
    torch.manual_seed(0)
    if s["kind"] == "qwen2_vl":
        m = T.Qwen2VLForConditionalGeneration(T.Qwen2VLConfig(text_config=tc, vision_config=s["vision"],
                                                              tie_word_embeddings=True, **ids))
    else:
        m = T.Qwen2_5_VLForConditionalGeneration(T.Qwen2_5_VLConfig(text_config=tc, vision_config=s["vision"],
                                                                    tie_word_embeddings=True, **ids))
    folder = OUT / f"{name}-hf"
    m.to(torch.float16).save_pretrained(folder)
    mf.link_tokenizer(folder)
    write_preprocessor_config(folder)
    n = sum(p.numel() for p in m.model.visual.parameters())
    print(f"{name}: vision tower {n / 1e6:.1f} M parameters -> {folder}", flush=True)
    return folder


def write_preprocessor_config(folder):
    """The hub's Qwen2-VL-2B-Instruct / Qwen2.5-VL-3B-Instruct preprocessor_config.json values."""
    mf.dump_json(folder / "preprocessor_config.json", {
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor"}, indent=2)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or list(SHAPES):
        folder = OUT / f"{name}-hf"
        if not (folder / "model.safetensors").exists() and not (folder / "model.safetensors.index.json").exists():
            build(name)
        if not (folder / "preprocessor_config.json").exists():
            write_preprocessor_config(folder)
        convert(folder, OUT / f"{name}-text-f16.gguf", "f16")
        convert(folder, OUT / f"mmproj-{name}-f16.gguf", "f16", "--mmproj")
        convert(folder, OUT / f"mmproj-{name}-q8_0.gguf", "q8_0", "--mmproj")


if __name__ == "__main__":
    main()
