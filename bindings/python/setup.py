"""Build hook: bundles libqwen.so into the package (qwen/libqwen.so) and tags the wheel for the platform.

The library is taken from, in order:
  1. the QWEN_LIBRARY environment variable (the file, or a folder holding libqwen.so);
  2. ../../.build/release/libqwen.so relative to this file (the libqwen repository's release build);
  3. a fresh `swift build -c release --product qwen` in the repository root, when this package lives inside it.
Set QWEN_NO_BUNDLE=1 to build a package without the library (it then uses QWEN_LIBRARY or the system's
libqwen.so.0 at run time).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _locate_library() -> Path:
    env = os.environ.get("QWEN_LIBRARY")
    if env:
        path = Path(env)
        if path.is_dir():
            path = path / "libqwen.so"
        if not path.is_file():
            sys.exit(f"QWEN_LIBRARY={env}: no libqwen.so there")
        return path
    built = REPO / ".build" / "release" / "libqwen.so"
    if built.is_file():
        return built
    if (REPO / "Package.swift").is_file() and (REPO / "include" / "qwen.h").is_file():
        swift = shutil.which("swift")
        if swift:
            print(f"building libqwen in {REPO} (swift build -c release --product qwen)", file=sys.stderr)
            subprocess.run([swift, "build", "-c", "release", "--product", "qwen"], cwd=REPO, check=True)
            if built.is_file():
                return built
    sys.exit("libqwen.so not found: set QWEN_LIBRARY to its path, or build it first "
             "(swift build -c release --product qwen in the libqwen repository)")


def _check_self_contained(path: Path) -> None:
    data = path.read_bytes()
    if b"libswiftCore.so\0" in data:
        print(f"warning: {path} links the Swift runtime dynamically (libswiftCore.so); the package will only "
              "work where the Swift runtime is installed. Rebuild libqwen with the static Swift runtime.",
              file=sys.stderr)


class BuildPyWithLibrary(build_py):
    """build_py that copies libqwen.so into the built package."""

    def run(self) -> None:
        super().run()
        if os.environ.get("QWEN_NO_BUNDLE") == "1" or self.editable_mode:
            return
        source = _locate_library().resolve()
        _check_self_contained(source)
        target = Path(self.build_lib) / "qwen" / "libqwen.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.chmod(target, 0o755)
        print(f"bundled {source} as {target}", file=sys.stderr)

    def get_outputs(self, include_bytecode: bool = True):  # lists the library in the wheel's RECORD
        outputs = super().get_outputs(include_bytecode)
        if os.environ.get("QWEN_NO_BUNDLE") != "1" and not self.editable_mode:
            outputs.append(str(Path(self.build_lib) / "qwen" / "libqwen.so"))
        return outputs


class PlatformWheel(bdist_wheel):
    """The wheel carries a native library: py3-none-<platform> instead of a pure-Python tag."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = os.environ.get("QWEN_NO_BUNDLE") == "1"

    def get_tag(self):
        python, abi, plat = super().get_tag()
        if self.root_is_pure:
            return python, abi, plat
        return "py3", "none", plat


setup(cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel})
