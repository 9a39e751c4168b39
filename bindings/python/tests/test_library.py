"""Loading libqwen: bundled copy, QWEN_LIBRARY, errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qwen

from conftest import TINY_Q8


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("QWEN_LIBRARY", None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)


def test_version() -> None:
    assert qwen.version() and qwen.version()[0].isdigit()
    assert qwen.status_name(-6) == "QWEN_ERR_CONTEXT_FULL"
    assert qwen.status_name(12345) == "QWEN_UNKNOWN_STATUS"


@pytest.mark.skipif("QWEN_LIBRARY" in os.environ, reason="QWEN_LIBRARY overrides the bundled library")
def test_bundled_library_is_used() -> None:
    path = Path(qwen.library_path())
    assert path == Path(qwen.__file__).resolve().with_name("libqwen.so")
    assert path.is_file()


@pytest.mark.skipif(os.environ.get("QWEN_TEST_INSTALLED") != "1", reason="only when run by test.sh")
def test_installed_package_is_tested() -> None:
    # test.sh installs the package (not editable): the tests must import that copy, not the sources
    assert "site-packages" in qwen.__file__


def test_qwen_library_env(tmp_path: Path) -> None:
    copy = tmp_path / "lib" / "libqwen.so"
    copy.parent.mkdir()
    shutil.copyfile(qwen.library_path(), copy)
    code = ("import qwen; print(qwen.library_path()); "
            f"m = qwen.Model({str(TINY_Q8)!r}); print(m.n_vocab)")
    r = run_python(code, QWEN_LIBRARY=str(copy))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(copy), "2112"]
    r = run_python("import qwen; print(qwen.library_path())", QWEN_LIBRARY=str(copy.parent))  # a folder
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)


def test_qwen_library_env_missing() -> None:
    r = run_python("import qwen\ntry:\n    qwen.Model('x.gguf')\nexcept qwen.LibraryNotFoundError as e:\n    print('ERR', e)",
                   QWEN_LIBRARY="/nonexistent/libqwen.so")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ERR") and "/nonexistent/libqwen.so" in r.stdout


def test_import_does_not_load_the_library() -> None:
    r = run_python("import qwen, qwen._lib as L; print(L._lib is None)", QWEN_LIBRARY="/nonexistent/libqwen.so")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


_WITHOUT_BUNDLED = (
    "import qwen._lib as L\n"
    "orig = L._candidates\n"
    "L._candidates = lambda: [c for c in orig() if 'bundled' not in c[1]]\n"
)


def test_system_library_fallback(tmp_path: Path) -> None:
    shutil.copyfile(qwen.library_path(), tmp_path / "libqwen.so.0")
    code = _WITHOUT_BUNDLED + f"import qwen\nprint(L.library_path(), qwen.Model({str(TINY_Q8)!r}).n_embd)"
    r = run_python(code, LD_LIBRARY_PATH=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["libqwen.so.0", "64"]


def test_no_library_found() -> None:
    code = _WITHOUT_BUNDLED + (
        "import qwen\n"
        "try:\n    qwen.Model('x.gguf')\n"
        "except qwen.LibraryNotFoundError as e:\n    print('ERR', e)\n"
        "else:\n    print('FOUND', L.library_path())\n"
    )
    r = run_python(code, LD_LIBRARY_PATH="")
    assert r.returncode == 0, r.stderr
    if r.stdout.startswith("FOUND"):
        pytest.skip("a libqwen.so.0 is installed on this system")
    assert r.stdout.startswith("ERR libqwen.so was not found") and "QWEN_LIBRARY" in r.stdout
