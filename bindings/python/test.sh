#!/bin/sh
# Tests of the Python binding: installs bindings/python (not editable, with libqwen.so bundled) into the venv
# .cache/py-venv and runs its pytest suite against the installed copy.
#
#   bindings/python/test.sh [PYTEST ARGS...]
#
# Needs a built library: .build/release/libqwen.so (swift build -c release --product qwen), or QWEN_LIBRARY set
# to it. The first run creates the venv and installs numpy, pytest, pillow, setuptools and wheel from PyPI; later
# runs need no network.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${QWEN_PY_VENV:-$repo/.cache/py-venv}
lib=${QWEN_LIBRARY:-$repo/.build/release/libqwen.so}
[ -d "$lib" ] && lib=$lib/libqwen.so
if [ ! -f "$lib" ]; then
    echo "bindings/python/test.sh: $lib not found; build it (swift build -c release --product qwen) or set QWEN_LIBRARY" >&2
    exit 1
fi
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    python3 -m venv "$venv"
fi
py=$venv/bin/python
if ! "$py" - <<'PY' 2>/dev/null
import numpy, pytest, PIL, wheel, setuptools
assert int(setuptools.__version__.split(".")[0]) >= 64
PY
then
    "$py" -m pip install --quiet --disable-pip-version-check numpy pytest pillow wheel "setuptools>=64"
fi

# A non-editable install from the source folder, as `pip install ./bindings/python` does, without build
# isolation so that no network is needed; then the build folders are removed from the source tree.
QWEN_LIBRARY=$lib "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    --force-reinstall "$here"
rm -rf "$here/build" "$here/src/qwen.egg-info"

# The tests import the installed package and its bundled library: no QWEN_LIBRARY, no PYTHONPATH.
cd "$here"
exec env -u QWEN_LIBRARY -u PYTHONPATH QWEN_TEST_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1 \
    "$py" -m pytest -p no:cacheprovider -q "$here/tests" "$@"
