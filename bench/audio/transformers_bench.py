#!/usr/bin/env python3
"""transformers' side of the audio benchmark: milliseconds for Qwen2-Audio-7B's audio tower and projector on CPU
(torch, float32 and bfloat16, N threads) over one 30-second window, from the log-mel features on (the feature
extraction is not timed). Model: bench/audio/make_models.py's random-weight folder.

    .cache/fixtures-venv/bin/python bench/audio/transformers_bench.py [-t 2] [-r 2] [--dtype float32]
"""
import argparse
import statistics
import time
from pathlib import Path

import torch
import transformers as T

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / ".cache" / "bench-audio" / "qwen2audio-7b-hf"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-r", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    a = ap.parse_args()
    torch.set_num_threads(a.t)
    dtype = getattr(torch, a.dtype)
    model = T.Qwen2AudioForConditionalGeneration.from_pretrained(FOLDER, dtype=dtype).eval()
    inner = model.model if hasattr(model, "model") and hasattr(model.model, "audio_tower") else model  # transformers 5 / 4
    tower, projector = inner.audio_tower, inner.multi_modal_projector
    mel = torch.randn(1, tower.config.num_mel_bins, 3000, dtype=dtype)  # one 30-second window
    times = []
    with torch.inference_mode():
        for r in range(-1, a.r):
            t0 = time.perf_counter()
            rows = projector(tower(mel).last_hidden_state)
            ms = (time.perf_counter() - t0) * 1e3
            if r >= 0:
                times.append(ms)
    sd = statistics.stdev(times) if len(times) > 1 else 0.0
    print(f"transformers {torch.__version__} {a.dtype}, {a.t} threads: 30 s window -> {rows.shape[1]} rows, "
          f"{statistics.mean(times):.0f} ms +- {sd:.0f} ({a.r} reps)")


if __name__ == "__main__":
    main()
