#!/usr/bin/env bash
# Installs what is missing, builds libqwen.so and the samples, and runs the chat sample.
#   scripts/run.sh                      # the bundled tiny model (random weights: the reply is gibberish)
#   scripts/run.sh -m MODEL.gguf -p "Why is the sky blue?"
# Any arguments are passed to samples/bin/qwen-chat.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build -c release
make -C samples   # also links libqwen.so.0 (the SONAME) to the built libqwen.so
if [ $# -eq 0 ]; then
  set -- -m Tests/Fixtures/tiny/qwen2-q8_0.gguf -p "Hello! Who are you?" -n 32 --seed 1
fi
exec samples/bin/qwen-chat "$@"
