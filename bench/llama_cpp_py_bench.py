#!/usr/bin/env python3
"""Fallback for llama-bench when it cannot be built: the same two tests through llama-cpp-python's low-level
binding (libllama of the same llama.cpp), so the per-call overhead is one ctypes call per decode.

    python bench/llama_cpp_py_bench.py -m MODEL -t THREADS [-p 512] [-n 128] [-r 1] [-b 512]

Like llama-bench: pp = one llama_decode of P random tokens (batch b, ubatch b) on an empty cache; tg = N
llama_decode calls of one random token each from an empty cache; one warm-up per test (pp: P tokens, tg: one
token); flash attention auto, KV cache F16, default load mode (mmap). Prints one JSON object with
pp_samples / tg_samples in tokens/s.
"""
import argparse, json, random, time
import llama_cpp as L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", required=True)
    ap.add_argument("-t", type=int, required=True)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=1)
    ap.add_argument("-b", type=int, default=512)
    a = ap.parse_args()

    quiet = L.llama_log_callback(lambda level, text, user: None)  # kept alive for the whole run
    L.llama_log_set(quiet, None)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    t0 = time.perf_counter()
    model = L.llama_model_load_from_file(a.m.encode(), mp)
    load_ms = (time.perf_counter() - t0) * 1e3
    if not model:
        raise SystemExit(f"cannot load {a.m}")
    n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    rng = random.Random(1)
    out = {"model": a.m, "threads": a.t, "n_prompt": a.p, "n_gen": a.n, "n_batch": a.b, "load_ms": load_ms,
           "pp_samples": [], "tg_samples": []}

    def context(n_ctx):
        cp = L.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = n_ctx, a.b, a.b
        cp.n_threads = cp.n_threads_batch = a.t
        cp.no_perf = True
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            raise SystemExit("cannot create a context")
        return ctx

    def decode(ctx, tokens):
        arr = (L.llama_token * len(tokens))(*tokens)
        if L.llama_decode(ctx, L.llama_batch_get_one(arr, len(tokens))) != 0:
            raise SystemExit("llama_decode failed")

    def prompt(ctx):
        L.llama_memory_clear(L.llama_get_memory(ctx), False)
        toks = [rng.randrange(n_vocab) for _ in range(a.p)]
        start = time.perf_counter()
        for i in range(0, a.p, a.b):
            decode(ctx, toks[i:i + a.b])
        L.llama_synchronize(ctx)
        return a.p / (time.perf_counter() - start)

    def generate(ctx, n):
        L.llama_memory_clear(L.llama_get_memory(ctx), False)
        start = time.perf_counter()
        for _ in range(n):
            decode(ctx, [rng.randrange(n_vocab)])
            L.llama_synchronize(ctx)
        return n / (time.perf_counter() - start)

    if a.p > 0:
        ctx = context(a.p)
        prompt(ctx)
        out["pp_samples"] = [prompt(ctx) for _ in range(a.r)]
        L.llama_free(ctx)
    if a.n > 0:
        ctx = context(a.n)
        generate(ctx, 1)
        out["tg_samples"] = [generate(ctx, a.n) for _ in range(a.r)]
        L.llama_free(ctx)
    L.llama_model_free(model)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
