"""python -m qwen: the command-line chat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import qwen

from conftest import TINY_Q8


def run(args: List[str], stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qwen", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_one_shot() -> None:
    r = run(["-m", str(TINY_Q8), "-p", "Hello", "-n", "8", "--seed", "1"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\n") and len(r.stdout) > 1
    assert "libqwen" in r.stderr and "Q8_0" in r.stderr and "generation: 8 tokens" in r.stderr


def test_greedy_output_equals_the_api() -> None:
    r = run(["-m", str(TINY_Q8), "-p", "Hello", "-n", "8", "--temp", "0", "-s", "Be terse.", "-t", "1", "-c", "256"])
    assert r.returncode == 0, r.stderr
    with qwen.Model(TINY_Q8) as m, m.context(n_ctx=256) as c:
        expected = c.chat([("system", "Be terse."), ("user", "Hello")], max_tokens=8, temperature=0)
    assert r.stdout == expected + "\n"


def test_interactive_save_reset_load(tmp_path: Path) -> None:
    state = tmp_path / "conv"
    script = f"Hello\n\n/save {state}\n/reset\n/load {state}\nAgain\n"
    r = run(["-m", str(TINY_Q8), "-n", "6", "--temp", "0", "-s", "Be terse.", "--window", "--no-think"], stdin=script)
    assert r.returncode == 0, r.stderr
    assert "(saved" in r.stderr and "(conversation cleared)" in r.stderr and "(loaded" in r.stderr
    assert len(r.stdout.splitlines()) == 2
    lines = (tmp_path / "conv.txt").read_text().splitlines()
    assert lines[0] == "system\tBe terse." and lines[1] == "user\tHello" and lines[2].startswith("assistant\t")
    assert state.is_file()
    # the same turns without /save, /reset, /load give the same second reply
    r2 = run(["-m", str(TINY_Q8), "-n", "6", "--temp", "0", "-s", "Be terse."], stdin="Hello\nAgain\n")
    assert r2.returncode == 0 and r2.stdout == r.stdout


def test_transcript_escaping(tmp_path: Path) -> None:
    from qwen.cli import load_transcript, save_transcript

    chat = [("user", "a\\nb\nc\\"), ("assistant", "")]
    save_transcript(chat, str(tmp_path / "t.txt"))
    assert load_transcript(str(tmp_path / "t.txt")) == chat


def test_errors() -> None:
    r = run(["-m", "/nonexistent/model.gguf", "-p", "Hi"])
    assert r.returncode == 1 and "error:" in r.stderr and "/nonexistent/model.gguf" in r.stderr
    r = run(["-p", "Hi"])
    assert r.returncode == 2  # -m is required
    r = run(["--help"])
    assert r.returncode == 0 and "--no-think" in r.stdout and "--image" in r.stdout
    r = run(["-m", str(TINY_Q8), "-c", "16", "-p", "Hello there, how are you doing today?"])
    assert r.returncode == 1 and "error:" in r.stderr and "n_ctx 16" in r.stderr
    r = run(["-m", str(TINY_Q8), "/load", "-p", "x"])
    assert r.returncode == 2


def test_media_options_without_the_api() -> None:
    if qwen.has_vision():
        return
    r = run(["-m", str(TINY_Q8), "-p", "Describe", "--image", "/nonexistent.png"])
    assert r.returncode == 1 and "vision" in r.stderr
