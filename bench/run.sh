#!/usr/bin/env bash
# libqwen vs llama.cpp on the same random-weight, real-shape GGUF files: one entry point.
#
#   bench/run.sh                                  # full run: 0.5b+1.5b, F16/Q8_0/Q4_0/Q4_K_M, 1 and 2 threads, 3 rounds
#   bench/run.sh --quick                          # 0.5b, Q8_0+Q4_0, pp64/tg16, 1 round: checks that everything works
#   bench/run.sh --report bench/RESULTS.md        # also write the Markdown report there
#   bench/run.sh --models 0.5b --types q4_0 --threads 2 -r 5 -p 512 -n 128
#
#   bench/run.sh --resume .cache/bench/results/<stamp>.json   # continue an interrupted run (same library snapshot)
#
# Steps: builds libqwen in release and the samples (skip with --no-build), copies libqwen.so into
# .cache/bench/snapshot/ and links a qwen-bench against that copy (so rebuilds of .build/ by other work during a
# long run change nothing), prepares the tools (bench/setup.sh: venv, llama-bench, membw; idempotent), makes
# missing model files, then runs bench/run.py with the remaining options (see `bench/run.py -h`:
# --llama auto|llama-bench|python|none, --bw-mib, --bw-passes, --note, --render).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=1
RESUME=0
SETUP_ARGS=(--no-models)
ARGS=()
PREV=
for a in "$@"; do
  case $PREV$a in
    --no-build) BUILD=0 ;;
    --resume) RESUME=1; ARGS+=("$a") ;;
    --llamapython|--llamanone) ARGS+=("$a"); SETUP_ARGS+=(--no-llama-bench) ;; # no llama-bench needed
    *) ARGS+=("$a") ;;
  esac
  PREV=$([ "$a" = --llama ] && echo --llama || true)
done
S=$ROOT/.cache/bench/snapshot
if [ "$RESUME" = 0 ] || [ ! -x "$S/qwen-bench" ]; then
  if [ "$BUILD" = 1 ]; then
    swift build -c release
    make -C samples
  fi
  # Snapshot the library; retry if a concurrent build is rewriting it (the check runs the tiny test model).
  for attempt in 1 2 3 4 5 6; do
    rm -rf "$S" && mkdir -p "$S"
    cp -p .build/release/libqwen.so "$S/"
    SONAME=$(objdump -p "$S/libqwen.so" | awk '/SONAME/ {print $2}')
    [ -z "$SONAME" ] || [ "$SONAME" = libqwen.so ] || ln -s libqwen.so "$S/$SONAME"
    if ${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -Iinclude samples/qwen-bench.c -o "$S/qwen-bench" \
         -L"$S" -Wl,-rpath,"$S" -lqwen -lm \
       && "$S/qwen-bench" -m Tests/Fixtures/tiny/qwen2-q8_0.gguf -p 4 -n 2 -r 1 > /dev/null; then
      break
    fi
    [ "$attempt" = 6 ] && { echo "cannot snapshot .build/release/libqwen.so" >&2; exit 1; }
    echo "libqwen.so not usable yet (a build in progress?); retrying in 30 s" >&2
    sleep 30
  done
fi
bash bench/setup.sh "${SETUP_ARGS[@]}"
export QWEN_BENCH=${QWEN_BENCH:-$S/qwen-bench}
exec "${BENCH_VENV:-$ROOT/.cache/fixtures-venv}/bin/python" bench/run.py --command "bench/run.sh $*" "${ARGS[@]}"
