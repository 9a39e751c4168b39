#!/usr/bin/env python3
"""llama.cpp's side of the vision and audio benchmarks (bench/media.py): milliseconds to encode an image or a clip with
libmtmd (llama-cpp-python 0.3.36, built from its vendored llama.cpp with -DGGML_NATIVE=ON), the same mmproj and the
same synthetic inputs as `qwen-vl --bench` / bench/audio/audio_bench.c. Timed around mtmd_encode_chunk only
(llama.cpp's own preprocessing, resizing or log-mel, happens in mtmd_tokenize and is not counted).

    .cache/fixtures-venv/bin/python bench/llama_mtmd_bench.py TEXT.gguf MMPROJ.gguf 448x448,1024x768 [-r REPS] [-t THREADS]
    .cache/fixtures-venv/bin/python bench/llama_mtmd_bench.py TEXT.gguf MMPROJ.gguf --audio 30 [-r REPS] [-t THREADS]
"""
import argparse
import ctypes
import json
import statistics
import time

import numpy as np
import llama_cpp
import llama_cpp.mtmd_cpp as M


def synthetic(w, h, variant):
    """The picture samples/qwen-vl.c makes for --bench (gradients, 16-px checker), first byte = variant."""
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = (x * 255 // max(1, w - 1)).astype(np.uint8)
    rgb[..., 1] = (y * 255 // max(1, h - 1)).astype(np.uint8)
    rgb[..., 2] = np.where(((x // 16) ^ (y // 16)) & 1, 200, 40).astype(np.uint8)
    rgb[0, 0, 0] = variant
    return rgb


def chirp(seconds):
    """The clip bench/audio/audio_bench.c makes: a chirp, a tone and LCG noise, 16 kHz mono."""
    n = int(seconds * 16000)
    t = np.arange(n) / 16000.0
    state = np.empty(n, np.uint64)
    s = 1
    for i in range(n):  # the same 32-bit LCG as the C program
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        state[i] = s
    noise = state.astype(np.float64) / 4294967296.0 - 0.5
    return (0.3 * np.sin(2 * np.pi * (200 * t + 60 * t * t)) + 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)


def encode_ms(ctx, bitmap):
    """Tokenizes one marker with the bitmap and times the encoding of its media chunks; returns (tokens, ms)."""
    marker = M.mtmd_default_marker()
    txt = M.mtmd_input_text(text=marker, text_len=len(marker), add_special=False, parse_special=True)
    chunks = M.mtmd_input_chunks_init()
    arr = (M.mtmd_bitmap_p_ctypes * 1)(bitmap)
    assert M.mtmd_tokenize(ctx, chunks, ctypes.byref(txt), arr, 1) == 0
    tokens, ms = 0, 0.0
    for i in range(M.mtmd_input_chunks_size(chunks)):
        ch = M.mtmd_input_chunks_get(chunks, i)
        if M.mtmd_input_chunk_get_type(ch) != M.MTMD_INPUT_CHUNK_TYPE_TEXT:
            tokens += M.mtmd_input_chunk_get_n_tokens(ch)
            t0 = time.perf_counter()
            assert M.mtmd_encode_chunk(ctx, ch) == 0
            ms += (time.perf_counter() - t0) * 1e3
    M.mtmd_input_chunks_free(chunks)
    return tokens, ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text")
    ap.add_argument("mmproj")
    ap.add_argument("sizes", nargs="?", default="")
    ap.add_argument("--audio", type=float, default=0, help="seconds of audio to encode instead of images")
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    a = ap.parse_args()
    llm = llama_cpp.Llama(model_path=a.text, n_ctx=512, n_threads=a.t, verbose=False)
    p = M.mtmd_context_params_default()
    p.use_gpu = False
    p.n_threads = a.t
    p.print_timings = False
    p.warmup = False
    ctx = M.mtmd_init_from_file(a.mmproj.encode(), llm._model.model, p)
    assert ctx, "mtmd_init_from_file failed"
    results = []
    if a.audio:
        pcm = chirp(a.audio)
        times, tokens = [], 0
        for r in range(-1, a.r):
            bm = M.mtmd_bitmap_init_from_audio(len(pcm), pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
            tokens, ms = encode_ms(ctx, bm)
            M.mtmd_bitmap_free(bm)
            if r >= 0:
                times.append(ms)
        sd = statistics.stdev(times) if len(times) > 1 else 0.0
        print(f"llama.cpp encode {a.audio} s of audio: {tokens} tokens, {statistics.mean(times):.1f} ms +- {sd:.1f} ({a.r} reps)",
              flush=True)
        results.append({"seconds": a.audio, "tokens": tokens, "ms": times})
    for size in (a.sizes.split(",") if a.sizes else []):
        w, h = map(int, size.split("x"))
        times, tokens = [], 0
        for r in range(-1, a.r):
            rgb = synthetic(w, h, r + 2)
            buf = rgb.tobytes()
            bm = M.mtmd_bitmap_init(w, h, (ctypes.c_uint8 * len(buf)).from_buffer_copy(buf))
            tokens, ms = encode_ms(ctx, bm)
            M.mtmd_bitmap_free(bm)
            if r >= 0:
                times.append(ms)
        sd = statistics.stdev(times) if len(times) > 1 else 0.0
        print(f"llama.cpp encode {w}x{h}: {tokens} tokens, {statistics.mean(times):.1f} ms +- {sd:.1f} ({a.r} reps)", flush=True)
        results.append({"size": size, "tokens": tokens, "ms": times})
    print("JSON " + json.dumps(results))
    M.mtmd_free(ctx)


if __name__ == "__main__":
    main()
