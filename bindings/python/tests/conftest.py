"""Shared fixtures of the qwen binding tests: the tiny random-weight models of Tests/Fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest

import qwen

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(os.environ.get("QWEN_FIXTURES", REPO / "Tests" / "Fixtures"))

if not (FIXTURES / "tiny" / "qwen2-f32.gguf").is_file():
    pytest.exit(f"test fixtures not found in {FIXTURES} (set QWEN_FIXTURES)", returncode=2)

TINY_F32 = FIXTURES / "tiny" / "qwen2-f32.gguf"
TINY_Q8 = FIXTURES / "tiny" / "qwen2-q8_0.gguf"
QWEN3 = FIXTURES / "family" / "qwen3-f32.gguf"
REFS = FIXTURES / "tiny" / "refs"

# The conversation of Tests/capi/test_capi.c, its rendering and its ids (transformers' tokenizer).
CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! 你好，世界。 Write f(x) = x**2 in Python 🐍."},
]
CHAT_TEXT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "Hello! 你好，世界。 Write f(x) = x**2 in Python 🐍.<|im_end|>\n<|im_start|>assistant\n"
)
CHAT_IDS = [2049, 82, 612, 198, 56, 283, 525, 264, 1492, 1262, 1071, 380, 517, 13, 2050, 198, 2049,
            872, 198, 39, 301, 385, 0, 220, 160, 121, 254, 161, 98, 121, 1540, 234, 160, 116, 244, 163,
            243, 234, 1773, 467, 1247, 282, 7, 87, 8, 284, 856, 334, 17, 304, 393, 88, 339, 263, 220,
            172, 253, 238, 235, 13, 2050, 198, 2049, 395, 380, 517, 198]
N_VOCAB = 2112
N_EMBD = 64


def reference() -> dict:
    """transformers' reference of the f32 tiny model (Tests/Fixtures/tiny/refs/hf_qwen2_f32.json)."""
    with open(REFS / "hf_qwen2_f32.json", encoding="utf-8") as f:
        return json.load(f)


def greedy_reference() -> List[int]:
    """transformers' 32 greedy tokens after CHAT_TEXT."""
    return list(reference()["greedy"])


def reference_last_logits() -> np.ndarray:
    return np.fromfile(REFS / "hf_qwen2_f32.logits.f32", dtype=np.float32).reshape(67, N_VOCAB)[-1]


def reference_last_hidden() -> np.ndarray:
    return np.fromfile(REFS / "hf_qwen2_f32.hidden.f32", dtype=np.float32).reshape(3, 67, N_EMBD)[2, -1]


@pytest.fixture(scope="session")
def model() -> Iterator[qwen.Model]:
    m = qwen.Model(TINY_F32)
    yield m
    m.close()


@pytest.fixture(scope="session")
def q8_model() -> Iterator[qwen.Model]:
    m = qwen.Model(TINY_Q8)
    yield m
    m.close()


@pytest.fixture
def ctx(model: qwen.Model) -> Iterator[qwen.Context]:
    c = model.context(n_ctx=128, kv_type="f32", threads=2)
    yield c
    c.close()
