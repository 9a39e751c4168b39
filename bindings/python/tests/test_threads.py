"""One model shared by contexts on several threads."""

from __future__ import annotations

import threading

import qwen

from conftest import CHAT, greedy_reference


def test_concurrent_contexts(model: qwen.Model) -> None:
    results = [None] * 4

    def work(i: int) -> None:
        with model.context(n_ctx=96, threads=1) as c:
            c.chat(CHAT, max_tokens=16, temperature=0)
            results[i] = c.last_tokens

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == greedy_reference()[:16] for r in results)
