#!/usr/bin/env bash
# Builds and installs libqwen: the header, the library (libqwen.so.X.Y.Z with the libqwen.so.0 and libqwen.so
# links), pkg-config and CMake files, and the samples.
#   scripts/install.sh                         # PREFIX=/usr/local
#   scripts/install.sh --prefix /opt/qwen      # or PREFIX=/opt/qwen scripts/install.sh
#   scripts/install.sh --destdir /tmp/stage    # staged install (packaging, a chroot): files go to DESTDIR/PREFIX
# Options: --no-build (use the library already built), --no-strip. QWEN_SWIFTPM_FLAGS adds swift build flags
# (e.g. "--scratch-path DIR").
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
BUILD=1
STRIP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --destdir) DESTDIR="$2"; shift 2 ;;
    --destdir=*) DESTDIR="${1#*=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    --no-strip) STRIP=0; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac

VERSION="$(sed -n 's/^#define QWEN_VERSION "\(.*\)"$/\1/p' include/qwen.h)"
MAJOR="${VERSION%%.*}"
[ "$BUILD" = 1 ] && swift build -c release ${QWEN_SWIFTPM_FLAGS:-} --product qwen
BUILT="$(swift build -c release ${QWEN_SWIFTPM_FLAGS:-} --show-bin-path)/libqwen.so"
[ -f "$BUILT" ] || { echo "install.sh: $BUILT is missing; build first" >&2; exit 1; }

ROOT="$DESTDIR$PREFIX"
LIBDIR="$ROOT/lib"
install -d "$ROOT/include" "$LIBDIR/pkgconfig" "$LIBDIR/cmake/qwen" "$ROOT/bin"
install -m 644 include/qwen.h "$ROOT/include/qwen.h"
install -m 755 "$BUILT" "$LIBDIR/libqwen.so.$VERSION"
[ "$STRIP" = 1 ] && strip --strip-unneeded "$LIBDIR/libqwen.so.$VERSION"
ln -sf "libqwen.so.$VERSION" "$LIBDIR/libqwen.so.$MAJOR"
ln -sf "libqwen.so.$MAJOR" "$LIBDIR/libqwen.so"

cat > "$LIBDIR/pkgconfig/qwen.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: qwen
Description: On-device inference for the Qwen model family (text, vision, audio)
Version: $VERSION
Libs: -L\${libdir} -lqwen
Cflags: -I\${includedir}
EOF

# Relocatable: paths are found from this file's location.
cat > "$LIBDIR/cmake/qwen/qwen-config.cmake" <<'EOF'
# find_package(qwen) provides the imported target qwen::qwen.
get_filename_component(_qwen_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET qwen::qwen)
  add_library(qwen::qwen SHARED IMPORTED)
  set_target_properties(qwen::qwen PROPERTIES
    IMPORTED_LOCATION "${_qwen_prefix}/lib/libqwen.so.0"
    IMPORTED_SONAME "libqwen.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_qwen_prefix}/include")
endif()
set(qwen_FOUND TRUE)
unset(_qwen_prefix)
EOF
cat > "$LIBDIR/cmake/qwen/qwen-config-version.cmake" <<EOF
set(PACKAGE_VERSION "$VERSION")
if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$MAJOR" AND NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
elseif(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
EOF

# Samples, linked against the installed library and finding it relative to themselves.
make -s -B -C samples BIN="$ROOT/bin" QWEN_LIB="$LIBDIR" QWEN_INCLUDE="$ROOT/include" QWEN_RPATH='$$ORIGIN/../lib'

if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
echo "installed libqwen $VERSION into $ROOT"
