#!/usr/bin/env bash
# Tests the ARM64 NEON row kernels (Sources/CQwen/include/cqwen_neon.h) against the scalar references of
# test_neon.c. Not part of the Swift package build.
#
# On x86-64 it cross-compiles with Debian's aarch64-linux-gnu-gcc and runs under qemu-aarch64 (installing
# gcc-aarch64-linux-gnu and qemu-user with apt-get when missing, which needs root):
#   1. gcc   -march=armv8.2-a+dotprod+fp16   (sdot kernels, the package's ARM baseline)
#   2. gcc   -march=armv8-a                  (the fallback without the dot-product extension)
#   3. clang -march=armv8.2-a+dotprod+fp16   (the compiler Swift imports the header with; when a clang is found)
#   4. host  -march=x86-64-v3                (the same checks on the AVX2 kernels: cross-checks the references)
# On an ARM64 machine it builds and runs 1-3 natively.
# Prints one "N passed, N failed" line per build and a total; exits non-zero on any failure.
#
# run.sh --swift (x86-64 only, a few minutes): also runs the whole Swift test suite with the ARM64 wiring on x86:
# a copy of the work tree (--swift-head: of the last commit), under .build-neon-tests/, where the
# `#elseif arch(arm64)` branches of QwenTensors are taken instead of the x86 ones and cqwen_neon.h is compiled
# through SIMDe (Debian's libsimde-dev, NEON intrinsics implemented for x86; the handful it lacks are shimmed below
# with ARM semantics), once without and once with __ARM_FEATURE_DOTPROD. It checks the Swift side of the wiring (names, types, which kernel each type gets) and the
# kernels against the Swift tests (portable vs .simd, fixtures); it says nothing about ARM code generation or speed.
set -u
swift_check=0
[ "${1:-}" = "--swift" ] && swift_check=1
[ "${1:-}" = "--swift-head" ] && swift_check=2  # the same on the last commit (git HEAD) instead of the work tree
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${NEON_TEST_OUT:-$root/.build-neon-tests}"
mkdir -p "$out"
src="$here/test_neon.c"
inc="-I$root/Sources/CQwen/include"
cflags="-O2 -std=gnu11 -Wall -Wextra"

arch="$(uname -m)"
if [ "$arch" = "aarch64" ] || [ "$arch" = "arm64" ]; then
    cc_arm="${CC:-cc}"
    run=()
    clang_target=()
else
    cc_arm=aarch64-linux-gnu-gcc
    run=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
    clang_target=(--target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu)
    if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
        echo "installing gcc-aarch64-linux-gnu and qemu-user (apt-get)"
        if [ "$(id -u)" != 0 ]; then echo "run.sh: needs root to install the cross compiler and qemu" >&2; exit 2; fi
        export DEBIAN_FRONTEND=noninteractive
        (apt-get update -qq && apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user) >"$out/apt.log" 2>&1 || {
            echo "run.sh: apt-get failed, see $out/apt.log" >&2; exit 2; }
    fi
fi

total_pass=0
total_fail=0
status=0

# run NAME BINARY [runner...]: runs a built test and adds up its counts
run_test() {
    local name="$1" bin="$2"
    shift 2
    echo "== $name"
    local log="$out/$name.log"
    "$@" "$bin" | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)"
    if [ -z "$line" ]; then
        echo "$name: no result line (exit $rc)"
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
    total_pass=$((total_pass + ${line%% passed*}))
    local f="${line##*, }"
    total_fail=$((total_fail + ${f%% failed}))
    [ "$rc" = 0 ] || status=1
}

build_fail() {
    echo "$1: build failed"
    total_fail=$((total_fail + 1))
    status=1
}

# 1. dot-product extension
if "$cc_arm" $cflags -march=armv8.2-a+dotprod+fp16 $inc "$src" -o "$out/test_neon_dotprod" -lm; then
    run_test gcc-armv8.2-a-dotprod "$out/test_neon_dotprod" "${run[@]}"
else build_fail gcc-armv8.2-a-dotprod; fi

# 2. plain ARMv8.0 NEON (no sdot)
if "$cc_arm" $cflags -march=armv8-a $inc "$src" -o "$out/test_neon_base" -lm; then
    run_test gcc-armv8-a "$out/test_neon_base" "${run[@]}"
else build_fail gcc-armv8-a; fi

# 3. clang (Swift's, when on PATH): compile with clang, link with the ARM gcc driver
clang_bin="$(command -v clang || true)"
if [ -n "$clang_bin" ]; then
    if "$clang_bin" "${clang_target[@]}" $cflags -march=armv8.2-a+dotprod+fp16 $inc -c "$src" -o "$out/test_neon_clang.o" &&
        "$cc_arm" "$out/test_neon_clang.o" -o "$out/test_neon_clang" -lm; then
        run_test clang-armv8.2-a-dotprod "$out/test_neon_clang" "${run[@]}"
    else build_fail clang-armv8.2-a-dotprod; fi
else
    echo "== clang not found: skipping the clang build"
fi

# 4. the AVX2 kernels on an x86-64 host, against the same references
if [ "$arch" = "x86_64" ]; then
    host_cc="${clang_bin:-cc}"
    if "$host_cc" $cflags -march=x86-64-v3 $inc "$src" -o "$out/test_avx2" -lm 2>"$out/avx2-build.log"; then
        if grep -qi avx2 /proc/cpuinfo; then
            run_test host-avx2 "$out/test_avx2"
        else
            echo "== host has no AVX2: skipping the AVX2 cross-check"
        fi
    else
        cat "$out/avx2-build.log"
        build_fail host-avx2
    fi
fi

# --swift: the Swift suite over the arm64 branches, NEON kernels through SIMDe (see the top)
simde_dir="$out/swift-simde"

# one copy of the work tree for both variants (a consistent snapshot while others edit the tree)
swift_simde_prepare() {
    local dir="$simde_dir" inc="$simde_dir/src/Sources/CQwen/include"
    rm -rf "$dir/src"
    mkdir -p "$dir/src/.cache"
    if [ "$swift_check" = 2 ]; then
        git -C "$root" archive HEAD | tar -xf - -C "$dir/src"
    else
        (cd "$root" && tar --exclude='./.build*' --exclude='./.cache' --exclude='./.git' -cf - .) | tar -xf - -C "$dir/src"
    fi
    [ -d "$root/.cache/tokenizers" ] && ln -s "$root/.cache/tokenizers" "$dir/src/.cache/tokenizers"
    # NEON header compiled on x86 through the shim; cqwen.h defines CQ_NEON_SIMDE first
    sed -i 's/^#if defined(__aarch64__)$/#if defined(__aarch64__) || defined(CQ_NEON_SIMDE)/;
            s|^#include <arm_neon.h>$|#if defined(CQ_NEON_SIMDE)\n#include "cq_simde_shim.h"\n#else\n#include <arm_neon.h>\n#endif|' \
        "$inc/cqwen.h" "$inc/cqwen_neon.h"
    sed -i '1i #ifndef CQ_NEON_SIMDE\n#define CQ_NEON_SIMDE 1\n#endif' "$inc/cqwen.h" "$inc/cqwen_neon.h"
    # QwenTensors as on arm64: x86 branches off, arm64 branches on
    find "$dir/src/Sources/QwenTensors" -name '*.swift' -exec sed -i \
        's/#if arch(x86_64) || arch(arm64)/#if true/; s/#if arch(x86_64)/#if false/; s/#elseif arch(arm64)/#elseif true/' {} +
}

swift_simde() {
    local variant="$1" dir="$simde_dir"
    echo "== swift test, arm64 branches, NEON through SIMDe ($variant)"
    local inc="$dir/src/Sources/CQwen/include"
    {
        echo '#ifndef CQ_SIMDE_SHIM_H'
        echo '#define CQ_SIMDE_SHIM_H'
        [ "$variant" = dotprod ] && echo '#define __ARM_FEATURE_DOTPROD 1'
        cat <<'SHIM'
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#include <math.h>
#include <string.h>
// intrinsics SIMDe 0.7 lacks, with ARM semantics: FCVTNS saturates and maps NaN to 0; FCVT rounds to nearest even
static inline int32x4_t shim_vcvtnq_s32_f32(float32x4_t a) {
    float t[4]; int32_t r[4];
    vst1q_f32(t, a);
    for (int i = 0; i < 4; i++) {
        if (isnan(t[i])) r[i] = 0;
        else { float v = rintf(t[i]); r[i] = v >= 2147483648.0f ? INT32_MAX : v < -2147483648.0f ? INT32_MIN : (int32_t)v; }
    }
    return vld1q_s32(r);
}
#define vcvtnq_s32_f32 shim_vcvtnq_s32_f32
static inline float16x4_t shim_vget_low_f16(float16x8_t a) { return vreinterpret_f16_u16(vget_low_u16(vreinterpretq_u16_f16(a))); }
#define vget_low_f16 shim_vget_low_f16
static inline float32x4_t shim_f16x4_to_f32(uint16x4_t h) {
    uint16_t b[4]; float f[4];
    vst1_u16(b, h);
    for (int i = 0; i < 4; i++) { __fp16 v; memcpy(&v, &b[i], 2); f[i] = (float)v; }
    return vld1q_f32(f);
}
static inline uint16x4_t shim_f32_to_f16x4(float32x4_t a) {
    float f[4]; uint16_t b[4];
    vst1q_f32(f, a);
    for (int i = 0; i < 4; i++) { __fp16 v = (__fp16)f[i]; memcpy(&b[i], &v, 2); }
    return vld1_u16(b);
}
#undef vcvt_f32_f16
#define vcvt_f32_f16(h) shim_f16x4_to_f32(vreinterpret_u16_f16(h))
#define vcvt_high_f32_f16(h) shim_f16x4_to_f32(vget_high_u16(vreinterpretq_u16_f16(h)))
#undef vcvt_f16_f32
#define vcvt_f16_f32(a) vreinterpret_f16_u16(shim_f32_to_f16x4(a))
#define vcvt_high_f16_f32(lo, a) vreinterpretq_f16_u16(vcombine_u16(vreinterpret_u16_f16(lo), shim_f32_to_f16x4(a)))
static inline uint32x4_t shim_vshll16(uint16x4_t a) { return vshlq_n_u32(vmovl_u16(a), 16); }
#undef vshll_n_u16
#define vshll_n_u16(a, n) shim_vshll16(a)
#define vshll_high_n_u16(a, n) shim_vshll16(vget_high_u16(a))
#endif
SHIM
    } >"$inc/cq_simde_shim.h"
    (cd "$dir/src" && swift build --build-tests --scratch-path "$dir/build-$variant") >"$dir/build-$variant.log" 2>&1 || {
        tail -30 "$dir/build-$variant.log"; build_fail "swift-simde-$variant"; return; }
    (cd "$dir/src" && swift test --skip-build --scratch-path "$dir/build-$variant") >"$dir/test-$variant.log" 2>&1
    local rc=$?
    grep -E '✘|Test run with|Executed' "$dir/test-$variant.log" | tail -20
    if [ "$rc" = 0 ]; then total_pass=$((total_pass + 1)); else total_fail=$((total_fail + 1)); status=1; fi
}

if [ "$swift_check" != 0 ]; then
    if [ "$arch" != "x86_64" ] || ! command -v swift >/dev/null; then
        echo "--swift needs an x86-64 host with swift on PATH"
        status=1
    else
        if [ ! -f /usr/include/simde/arm/neon.h ]; then
            echo "installing libsimde-dev (apt-get)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsimde-dev >"$out/apt-simde.log" 2>&1 ||
                { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsimde-dev; } >>"$out/apt-simde.log" 2>&1
        fi
        swift_simde_prepare
        swift_simde fallback
        swift_simde dotprod
    fi
fi

echo "neon: $total_pass passed, $total_fail failed"
exit $status
