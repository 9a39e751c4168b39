#!/usr/bin/env bash
# Proves libqwen.so embeds anywhere: installs it (scripts/install.sh) into a minimal Debian root made with
# debootstrap (no Swift, no compiler), builds C hosts against the install with pkg-config and with CMake, and
# runs them there: the C ABI test and the chat sample on the tiny models. Also checks what the library exports
# and links. Needs root (chroot) and the Debian mirror; the base root is cached in .cache/cleanroot.
set -euo pipefail
cd "$(dirname "$0")/.."
need=""
for p in debootstrap cmake pkg-config; do command -v "$p" >/dev/null || need="$need $p"; done
if [ -n "$need" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $need; fi

BASE="$PWD/.cache/cleanroot/bookworm-media"
mkdir -p "$(dirname "$BASE")"
if [ ! -x "$BASE/bin/sh" ]; then
  rm -rf "$BASE"
  # minimal Debian plus the runtime libraries of the image and audio decoders libqwen links (no -dev packages)
  debootstrap --variant=minbase --include=libpng16-16,libjpeg62-turbo,libsndfile1,libsoxr0 bookworm "$BASE"  # default mirror
fi
WORK="$(mktemp -d /tmp/qwen-cleanroot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -a "$BASE/." "$WORK/"

swift build -c release ${QWEN_SWIFTPM_FLAGS:-} --product qwen
LIB="$(swift build -c release ${QWEN_SWIFTPM_FLAGS:-} --show-bin-path)/libqwen.so"
echo "== what libqwen.so links and exports"
readelf -d "$LIB" | grep -E 'NEEDED|SONAME|RUNPATH'
if readelf -d "$LIB" | grep NEEDED | grep -qi swift; then echo "FAIL: links a Swift runtime library" >&2; exit 1; fi
readelf -d "$LIB" | grep -q 'SONAME.*\[libqwen.so.0\]' || { echo "FAIL: SONAME is not libqwen.so.0" >&2; exit 1; }
others="$(nm -D --defined-only "$LIB" | awk '{print $3}' | grep -v '^qwen_' || true)"
[ -z "$others" ] || { echo "FAIL: exports symbols besides qwen_*:" >&2; echo "$others" >&2; exit 1; }
declared="$(grep -oE '\bqwen_[a-z0-9_]+\(' include/qwen.h | tr -d '(' | sort -u)"
exported="$(nm -D --defined-only "$LIB" | awk '{print $3}' | sed 's/@.*//' | sort -u)"
missing="$(comm -23 <(echo "$declared") <(echo "$exported"))"
[ -z "$missing" ] || { echo "FAIL: declared in qwen.h but not exported: $missing" >&2; exit 1; }
echo "exports the $(echo "$exported" | wc -l) functions of qwen.h and nothing else"

scripts/install.sh --no-build --prefix /usr/local --destdir "$WORK"
INSTALLED="$WORK/usr/local/lib/libqwen.so.0"
echo "installed (stripped) size: $(stat -L -c %s "$INSTALLED") bytes"

echo "== C hosts built against the install"
PKG_CONFIG_SYSROOT_DIR="$WORK" PKG_CONFIG_LIBDIR="$WORK/usr/local/lib/pkgconfig" \
  bash -c 'cc -std=c11 -Wall -Wextra -Werror Tests/capi/test_capi.c -o "$0/usr/local/bin/test_capi" \
           $(pkg-config --cflags --libs qwen) -lm -pthread' "$WORK"
cmake -S samples -B "$WORK/tmp/cmake-build" -DCMAKE_PREFIX_PATH="$WORK/usr/local" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$WORK/tmp/cmake-build" >/dev/null
install -m 755 "$WORK/tmp/cmake-build/qwen-chat" "$WORK/usr/local/bin/qwen-chat-cmake"
rm -rf "$WORK/tmp/cmake-build"
cp -a Tests/Fixtures "$WORK/fixtures"

echo "== running in the clean root"
chroot "$WORK" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root /bin/sh -e -c '
  ldconfig
  if command -v swift cc gcc >/dev/null; then echo "FAIL: the root has a toolchain" >&2; exit 1; fi
  if find / -xdev -name "libswift*" | grep .; then echo "FAIL: Swift runtime libraries in the root" >&2; exit 1; fi
  echo "libqwen.so.0 resolves to: $(ldd /usr/local/bin/test_capi | grep qwen)"
  test_capi /fixtures | tail -1
  qwen-chat -m /fixtures/tiny/qwen2-q8_0.gguf -p Hello -n 8 --seed 1
  qwen-chat-cmake -m /fixtures/tiny/qwen2-q8_0.gguf -p Hello -n 8 --seed 1 >/dev/null
'
echo "clean-root test passed"
