#!/bin/sh
# Builds and runs the C++ binding test (test_qwen.cpp, -std=c++17 -Wall -Wextra -Werror) against libqwen.
#
#   bindings/cpp/test.sh [LIBDIR]     LIBDIR holds libqwen.so (default: $QWEN_LIBRARY's folder, else .build/release)
#
# Also compiles the test as C++20 with extra warnings (-Wpedantic -Wshadow -Wconversion) to keep the header clean
# for stricter hosts. CXX overrides the compiler (default c++).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ $# -ge 1 ]; then
    libdir=$1
elif [ -n "${QWEN_LIBRARY:-}" ]; then
    if [ -d "$QWEN_LIBRARY" ]; then libdir=$QWEN_LIBRARY; else libdir=$(dirname "$QWEN_LIBRARY"); fi
else
    libdir=$repo/.build/release
fi
libdir=$(cd "$libdir" && pwd)
[ -f "$libdir/libqwen.so" ] || { echo "bindings/cpp/test.sh: no libqwen.so in $libdir" >&2; exit 1; }
cxx=${CXX:-c++}

# The executable needs the library under its SONAME (libqwen.so.0): link through a folder that has both names.
work=$(mktemp -d "${TMPDIR:-/tmp}/qwen-cpp-test.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
ln -s "$libdir/libqwen.so" "$work/libqwen.so"
ln -s "$libdir/libqwen.so" "$work/libqwen.so.0"

common="-I$repo/include -I$here -L$work -lqwen -Wl,-rpath,$work -pthread"
# shellcheck disable=SC2086
"$cxx" -std=c++17 -Wall -Wextra -Werror -O1 -o "$work/test_qwen" "$here/test_qwen.cpp" $common
# shellcheck disable=SC2086
"$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror -fsyntax-only -I"$repo/include" -I"$here" \
    "$here/test_qwen.cpp"
"$work/test_qwen" "$repo/Tests/Fixtures"
