#!/usr/bin/env python3
"""Vision and audio encoders, libqwen next to llama.cpp's libmtmd on the same mmproj files, same thread count, one run.

    .cache/fixtures-venv/bin/python bench/media.py [--vision qwen2vl-2b,qwen25vl-3b] [--audio qwen2audio-7b]
        [--types f16,q8_0] [--sizes 448x448,1024x768] [--seconds 30] [-t 2] [-r 3] [--report FILE]

Models: random weights in the real shapes, made by bench/vision/make_models.py (.cache/bench-vision) and
bench/audio/make_models.py (.cache/bench-audio); an empty --vision or --audio skips that part.
libqwen: `qwen-vl --bench` (synthetic images) and bench/audio/audio_bench.c (a synthetic 16 kHz clip), built against
a snapshot of .build/release/libqwen.so in .cache/bench/media-snapshot. llama.cpp: bench/llama_mtmd_bench.py with
the same inputs. The engines alternate (which goes first flips per cell). libqwen's times include preprocessing
(resize and normalisation, log-mel); llama.cpp's cover mtmd_encode_chunk only.
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAP = ROOT / ".cache" / "bench" / "media-snapshot"
VENV_PY = ROOT / ".cache" / "fixtures-venv" / "bin" / "python"


def build_snapshot():
    SNAP.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / ".build" / "release" / "libqwen.so", SNAP / "libqwen.so")
    link = SNAP / "libqwen.so.0"
    if not link.exists():
        link.symlink_to("libqwen.so")
    for name, src in [("qwen-vl", ROOT / "samples" / "qwen-vl.c"), ("audio_bench", ROOT / "bench" / "audio" / "audio_bench.c")]:
        subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(src), "-o",
                        str(SNAP / name), f"-L{SNAP}", f"-Wl,-rpath,{SNAP}", "-lqwen", "-lm"] + (["-lpng"] if name == "qwen-vl" else []),
                       check=True)


def run(cmd):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def ours_vision(text, mmproj, sizes, threads, reps):
    out = run([SNAP / "qwen-vl", "-m", text, "--mmproj", mmproj, "--bench", sizes, "-r", reps, "-t", threads])
    res = {}
    for m in re.finditer(r"encode (\d+x\d+): (\d+) tokens, ([\d.]+) ms \+- ([\d.]+)", out):
        res[m.group(1)] = dict(tokens=int(m.group(2)), ms=float(m.group(3)), sd=float(m.group(4)))
    return res


def llama(text, mmproj, threads, reps, sizes=None, seconds=None):
    cmd = [VENV_PY, ROOT / "bench" / "llama_mtmd_bench.py", text, mmproj] + ([sizes] if sizes else ["--audio", seconds])
    cmd += ["-r", reps, "-t", threads]
    out = run(cmd)
    rows = json.loads(out.split("JSON ", 1)[1])
    res = {}
    for r in rows:
        key = r.get("size") or "audio"
        sd = statistics.stdev(r["ms"]) if len(r["ms"]) > 1 else 0.0
        res[key] = dict(tokens=r["tokens"], ms=statistics.mean(r["ms"]), sd=sd)
    return res


def ours_audio(text, mmproj, seconds, threads, reps):
    out = run([SNAP / "audio_bench", "-m", text, "--mmproj", mmproj, "-s", seconds, "-t", threads, "-r", reps, "--json"])
    r = json.loads(out.strip().splitlines()[-1])
    return {"audio": dict(tokens=r["tokens"], ms=r["mean_ms"], sd=r["sd_ms"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vision", default="qwen2vl-2b,qwen25vl-3b")
    ap.add_argument("--audio", default="qwen2audio-7b")
    ap.add_argument("--types", default="f16,q8_0")
    ap.add_argument("--sizes", default="448x448,1024x768")
    ap.add_argument("--seconds", default="30")
    ap.add_argument("-t", default="2")
    ap.add_argument("-r", default="3")
    ap.add_argument("--report")
    a = ap.parse_args()
    build_snapshot()
    lines = ["| model | mmproj | input | tokens (libqwen / llama.cpp) | libqwen ms | llama.cpp ms | speed-up |",
             "|---|---|---|---|---|---|---|"]
    raw = []
    cell = 0
    jobs = [("vision", m) for m in filter(None, a.vision.split(","))] + [("audio", m) for m in filter(None, a.audio.split(","))]
    for kind, model in jobs:
        folder = ROOT / ".cache" / ("bench-vision" if kind == "vision" else "bench-audio")
        text = folder / f"{model}-text-f16.gguf"
        for t in a.types.split(","):
            mmproj = folder / f"mmproj-{model}-{t}.gguf"
            if not mmproj.exists() or not text.exists():
                print(f"missing {mmproj} or {text}: run bench/{kind}/make_models.py", file=sys.stderr)
                continue
            engines = [
                ("libqwen", lambda: ours_vision(text, mmproj, a.sizes, a.t, a.r) if kind == "vision"
                 else ours_audio(text, mmproj, a.seconds, a.t, a.r)),
                ("llama.cpp", lambda: llama(text, mmproj, a.t, a.r, sizes=a.sizes) if kind == "vision"
                 else llama(text, mmproj, a.t, a.r, seconds=a.seconds)),
            ]
            if cell % 2:
                engines.reverse()
            cell += 1
            res = {}
            for name, fn in engines:
                print(f"{model} {t}: {name}...", file=sys.stderr, flush=True)
                res[name] = fn()
            ours, theirs = res["libqwen"], res["llama.cpp"]
            for key in ours:
                o, l = ours[key], theirs.get(key)
                label = f"{a.seconds} s" if key == "audio" else key
                extra = f" (real-time factor {o['ms'] / (float(a.seconds) * 1000):.3f})" if key == "audio" else ""
                if l is None:
                    lines.append(f"| {model} | {t.upper()} | {label} | {o['tokens']} / - | {o['ms']:.0f} ± {o['sd']:.0f}{extra} | - | - |")
                    continue
                lines.append(f"| {model} | {t.upper()} | {label} | {o['tokens']} / {l['tokens']} | {o['ms']:.0f} ± {o['sd']:.0f}{extra} "
                             f"| {l['ms']:.0f} ± {l['sd']:.0f} | {l['ms'] / o['ms']:.2f}x |")
                raw.append(dict(model=model, type=t, input=label, libqwen=o, llama=l))
            print("\n".join(lines), file=sys.stderr, flush=True)
    report = "\n".join(lines) + "\n"
    print(report)
    if a.report:
        Path(a.report).write_text(report)
    results = ROOT / ".cache" / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "media-last.json").write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
