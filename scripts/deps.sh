#!/usr/bin/env bash
# Installs the system packages libqwen needs to build and test, when they are missing.
# Swift itself is expected on PATH (https://www.swift.org/install/linux/).
set -euo pipefail
PACKAGES="build-essential pkg-config python3 python3-pip python3-venv libpng-dev libjpeg62-turbo-dev libsndfile1-dev libsoxr-dev"
# cross compiler and emulator for testing the ARM64 kernels on x86-64 machines
[ "$(uname -m)" = x86_64 ] && PACKAGES="$PACKAGES gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "please install:$missing" >&2; exit 1
  fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install the Swift 6 toolchain first" >&2; exit 1; }
