"""``python -m qwen``: a command-line chat, with the options of libqwen's ``qwen-chat`` sample.

    python -m qwen -m MODEL [-p PROMPT] [-s|--system SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS]
                   [-c N_CTX] [--window] [--no-think] [--mmproj FILE] [--image FILE]... [--audio FILE]...

With -p it answers once and exits; without it, it reads one user turn per line from stdin. Earlier turns stay
in the KV cache and are not recomputed. Interactive commands: /reset (forget the conversation, the system
prompt stays), /save FILE (the KV cache to FILE, the transcript to FILE.txt), /load FILE. Ctrl-C stops a reply.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, List, Optional, Sequence, Tuple

from . import version
from .context import Context
from .errors import ContextFullError, QwenError
from .media import Audio, Image
from .model import Model


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m qwen",
        description="Chat with a Qwen model through libqwen. MODEL is a GGUF file or a Hugging Face folder.",
        epilog="Interactive commands: /reset, /save FILE, /load FILE.",
    )
    p.add_argument("-m", dest="model", required=True, metavar="MODEL", help="GGUF file or Hugging Face folder")
    p.add_argument("-p", dest="prompt", metavar="PROMPT", help="answer this prompt once and exit")
    p.add_argument("-s", "--system", metavar="SYSTEM", help="system prompt")
    p.add_argument("-n", dest="max_tokens", type=int, default=256, metavar="MAX_TOKENS",
                   help="tokens per reply at most (default 256)")
    p.add_argument("--temp", type=float, default=None, metavar="T", help="temperature (default 0.8; 0 = greedy)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default: random)")
    p.add_argument("-t", dest="threads", type=int, default=0, metavar="THREADS", help="threads (default: all)")
    p.add_argument("-c", dest="n_ctx", type=int, default=0, metavar="N_CTX", help="context size")
    p.add_argument("--window", action="store_true", help="drop old turns instead of failing when the context is full")
    p.add_argument("--no-think", action="store_true", help="turn Qwen3's thinking off")
    p.add_argument("--mmproj", metavar="FILE", help="multimodal projector (vision/audio encoder)")
    p.add_argument("--image", action="append", default=[], metavar="FILE", help="an image for the chat (repeatable)")
    p.add_argument("--audio", action="append", default=[], metavar="FILE", help="an audio clip for the chat (repeatable)")
    return p


def save_transcript(messages: Sequence[Tuple[str, str]], path: str) -> None:
    """One message per line, ``role<TAB>content``, with backslashes and newlines escaped (qwen-chat's format)."""
    with open(path, "w", encoding="utf-8") as f:
        for role, content in messages:
            f.write(role + "\t" + content.replace("\\", "\\\\").replace("\n", "\\n") + "\n")


def load_transcript(path: str) -> List[Tuple[str, str]]:
    """Reads a transcript written by :func:`save_transcript` (or by qwen-chat)."""
    out: List[Tuple[str, str]] = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            role, sep, escaped = line.partition("\t")
            if not sep:
                raise ValueError(f"{path}: malformed line")
            chars: List[str] = []
            i = 0
            while i < len(escaped):
                c = escaped[i]
                if c == "\\" and i + 1 < len(escaped) and escaped[i + 1] in "n\\":
                    chars.append("\n" if escaped[i + 1] == "n" else "\\")
                    i += 2
                else:
                    chars.append(c)
                    i += 1
            out.append((role, "".join(chars)))
    return out


def main(argv: Optional[Sequence[str]] = None, stdin: Optional[IO[str]] = None) -> int:
    args = _parser().parse_args(argv)
    stdin = stdin if stdin is not None else sys.stdin
    t0 = time.monotonic()
    try:
        model = Model(args.model, mmproj=args.mmproj)
        ctx = Context(model, n_ctx=args.n_ctx, threads=args.threads, sliding_window=args.window)
        # decoded once, passed with every turn (the context reuses their embeddings)
        images = [Image(path) for path in args.image]
        clips = [Audio(path) for path in args.audio]
    except (QwenError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    info = model.info
    print(f"libqwen {version()}: loaded {args.model} ({info.architecture}, {info.weight_type}, "
          f"{info.n_params * 1e-6:.1f}M parameters) in {time.monotonic() - t0:.2f} s (n_ctx {ctx.n_ctx})",
          file=sys.stderr)

    sampling = {"temperature": args.temp, "seed": args.seed}
    chat: List[Tuple[str, str]] = [("system", args.system)] if args.system is not None else []
    keep = len(chat)
    status = 0
    generated_total = prompt_tokens = 0
    generation_seconds = prompt_seconds = 0.0
    try:
        while True:
            if args.prompt is not None:
                user = args.prompt
            else:
                print("> ", end="", file=sys.stderr, flush=True)
                line = stdin.readline()
                if not line:
                    break
                line = line.rstrip("\n")
                if not line:
                    continue
                if line == "/reset":
                    del chat[keep:]
                    ctx.reset()
                    print("(conversation cleared)", file=sys.stderr)
                    continue
                if line.startswith("/save ") or line.startswith("/load "):
                    path = line[6:]
                    saving = line[1] == "s"
                    try:
                        if saving:
                            ctx.save_state_file(path)
                            save_transcript(chat, path + ".txt")
                        else:
                            ctx.load_state_file(path)
                            chat = load_transcript(path + ".txt")
                        print(f"({'saved' if saving else 'loaded'} {path})", file=sys.stderr)
                    except (QwenError, OSError, ValueError) as e:
                        print(f"error: cannot {'save' if saving else 'load'} {path}: {e}", file=sys.stderr)
                    continue
                user = line
            chat.append(("user", user))

            before = ctx.n_past
            t1 = time.monotonic()
            try:
                ctx.eval_chat(chat, images=images, audio=clips, enable_thinking=not args.no_think)
            except QwenError as e:
                print(f"error: {e.message or e}", file=sys.stderr)
                chat.pop()
                if args.prompt is not None:
                    status = 1
                    break
                continue
            prompt_seconds += time.monotonic() - t1
            prompt_tokens += max(ctx.n_past - before, 0)

            t2 = time.monotonic()
            stream = ctx.generate(args.max_tokens, stream=True, **sampling)
            failed = False
            try:
                for piece in stream:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            except ContextFullError as e:
                print(f"\nerror: {e.message}", file=sys.stderr)
            except QwenError as e:
                print(f"\nerror: {e.message}", file=sys.stderr)
                failed = True
            except KeyboardInterrupt:
                stream.close()
                print("\n(stopped)", file=sys.stderr)
                if args.prompt is not None:
                    status = 130
            generation_seconds += time.monotonic() - t2
            sys.stdout.write("\n")
            sys.stdout.flush()
            generated_total += len(stream.tokens)
            chat.append(("assistant", stream.text))
            if failed:
                status = 1
                break
            if args.prompt is not None:
                break
    except KeyboardInterrupt:
        print("", file=sys.stderr)

    def rate(n: int, s: float) -> float:
        return n / s if s > 0 else 0.0

    print(f"prompt: {prompt_tokens} tokens in {prompt_seconds:.3f} s ({rate(prompt_tokens, prompt_seconds):.1f} tok/s); "
          f"generation: {generated_total} tokens in {generation_seconds:.3f} s "
          f"({rate(generated_total, generation_seconds):.1f} tok/s)", file=sys.stderr)
    for image in images:
        image.close()
    for clip in clips:
        clip.close()
    ctx.close()
    model.close()
    return status
