#!/usr/bin/env python3
"""libqwen vs llama.cpp on the same GGUF files, same thread count, one run. Called by bench/run.sh.

For every model x type x thread count, REPS rounds; each round runs `qwen-bench -r 1` and `llama-bench -r 1`
as fresh processes (each does its own warm-up), alternating which goes first, so machine noise is spread over
both. Memory read bandwidth (bench/membw.c) is measured at the start, before each model file and at the
end; per thread count, the median of those measurements' best passes is the bound. Because this VM's bandwidth
drifts by 10-30% over minutes, a short probe also runs just before every engine's round ("round probe"), and each
round's decode is also given as a fraction of its own probe's best pass. Prints a Markdown report (and
writes it to --report), and keeps the raw numbers as JSON under .cache/bench/results/.
"""
import argparse, datetime, json, os, platform, re, shlex, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache", "bench")
LLAMA_CPP = os.path.join(ROOT, ".cache", "fixtures-dl", "llama_cpp_python-0.3.36", "vendor", "llama.cpp")
QWEN_BENCH = os.environ.get("QWEN_BENCH", os.path.join(ROOT, "samples", "bin", "qwen-bench"))
LLAMA_BENCH = os.environ.get("LLAMA_BENCH", os.path.join(CACHE, "llama-build", "bin", "llama-bench"))
MEMBW = os.environ.get("MEMBW", os.path.join(CACHE, "bin", "membw"))
PY_FALLBACK = os.path.join(ROOT, "bench", "llama_cpp_py_bench.py")
SHAPE_NAMES = {"0.5b": "Qwen2.5-0.5B", "1.5b": "Qwen2.5-1.5B"}


def rel(p):
    return os.path.relpath(p, ROOT) if p.startswith(ROOT) else p


# ---------------------------------------------------------------- processes

def cpu_busy_seconds():
    """Busy CPU time of the whole machine so far (all CPUs, from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / os.sysconf("SC_CLK_TCK")


def run_child(cmd):
    """Runs cmd; returns (stdout, stderr, exit code, peak RSS MiB, wall s, CPU load of other processes)."""
    busy0, t0 = cpu_busy_seconds(), time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as err:
        for attempt in range(5):  # a shared machine can briefly run out of processes (fork: EAGAIN)
            try:
                p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
                break
            except BlockingIOError:
                if attempt == 4:
                    raise
                time.sleep(30)
        out = p.stdout.read()
        p.stdout.close()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    wall = time.monotonic() - t0
    others = max(0.0, (cpu_busy_seconds() - busy0) - (ru.ru_utime + ru.ru_stime)) / wall
    return out, stderr, p.returncode, ru.ru_maxrss / 1024, wall, others


def first_json(text):
    """The JSON value in a tool's stdout (llama-bench prints only JSON with -o json)."""
    start = min([i for i in (text.find("{"), text.find("[")) if i >= 0], default=-1)
    if start < 0:
        raise ValueError("no JSON in output: " + text[-500:])
    return json.JSONDecoder().raw_decode(text[start:])[0]


class Ours:
    name = "libqwen"

    def cmd(self, model, a, t):
        return [QWEN_BENCH, "-m", model, "-p", str(a.p), "-n", str(a.n), "-t", str(t), "-r", "1", "-b", str(a.b),
                "--json"]

    def parse(self, out):
        j = first_json(out)
        return dict(pp=j["pp_samples"], tg=j["tg_samples"], load_ms=j["load_ms"],
                    info={"libqwen_version": j.get("libqwen_version")})


class LlamaBench:
    name = "llama-bench"

    def cmd(self, model, a, t):
        # defaults otherwise: flash attention auto, KV cache f16/f16, load mode auto (mmap), repack on, poll 50
        return [LLAMA_BENCH, "-m", model, "-p", str(a.p), "-n", str(a.n), "-t", str(t), "-r", "1", "-b", str(a.b),
                "-ub", str(a.b), "-o", "json"]

    def parse(self, out):
        rows = first_json(out)
        res = dict(pp=[], tg=[], load_ms=None, info={})
        for r in rows:
            res["pp" if r["n_prompt"] > 0 else "tg"] += r["samples_ts"]
            res["info"] = {k: r.get(k) for k in ("build_commit", "build_number", "cpu_info", "backends", "n_batch",
                                                 "n_ubatch", "type_k", "type_v", "flash_attn", "load_mode", "repack",
                                                 "poll", "model_type", "model_size", "model_n_params")}
        return res


class LlamaPython:
    name = "llama-cpp-python"

    def cmd(self, model, a, t):
        return [sys.executable, PY_FALLBACK, "-m", model, "-p", str(a.p), "-n", str(a.n), "-t", str(t), "-r", "1",
                "-b", str(a.b)]

    def parse(self, out):
        j = first_json(out)
        return dict(pp=j["pp_samples"], tg=j["tg_samples"], load_ms=j["load_ms"], info={})


# ---------------------------------------------------------------- facts about files and the machine

def gguf_facts(path):
    """Bytes a decode step reads from the weights, and the tensor-type mix."""
    sys.path.insert(0, os.path.join(LLAMA_CPP, "gguf-py"))
    from gguf import GGUFReader
    r = GGUFReader(path)
    sizes = {t.name: int(t.n_bytes) for t in r.tensors}
    by_type = {}
    for t in r.tensors:
        by_type[t.tensor_type.name] = by_type.get(t.tensor_type.name, 0) + int(t.n_bytes)
    emb = next(t for t in r.tensors if t.name == "token_embd.weight")
    emb_row = int(emb.n_bytes) // int(emb.shape[1])  # shape is (n_embd, n_vocab)
    total = sum(sizes.values())
    tied = "output.weight" not in sizes
    # Tied: token_embd is read in full as the output head, plus one row for the lookup.
    # Untied: the output head is its own tensor; token_embd contributes only the looked-up row.
    per_token = total + emb_row if tied else total - sizes["token_embd.weight"] + emb_row
    mix = ", ".join(f"{k} {v / total * 100:.0f}%" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])
                    if v / total >= 0.005)
    return dict(file_bytes=os.path.getsize(path), tensor_bytes=total, decode_bytes=per_token, tied=tied,
                embd_type=emb.tensor_type.name, mix=mix)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, shell=isinstance(cmd, str), timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001 - informational only
        return f"({e})"


def machine():
    cpu = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                cpu.setdefault(k, v)
    flags = cpu.get("flags", "").split()
    wanted = ["sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx512vbmi", "avx_vnni", "amx_int8", "asimd", "asimddp", "sve"]
    mem = sh("grep MemTotal /proc/meminfo").split()
    caches = sh("lscpu | grep -E 'L1d|L2|L3'").replace("\n", "; ")
    return {
        "cpu": cpu.get("model name", platform.processor()), "cpu_flags": " ".join(f for f in wanted if f in flags),
        "vcpus": os.cpu_count(), "threads_per_core": sh("lscpu | grep 'Thread(s) per core' | awk '{print $NF}'"),
        "caches": re.sub(r"\s+", " ", caches), "memory_gib": round(int(mem[1]) / 2**20, 1) if len(mem) > 1 else None,
        "kernel": platform.release(), "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "swift": sh("swift --version 2>&1 | head -1"), "cc": sh("cc --version | head -1"),
        "libqwen_commit": sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
                          + (" + uncommitted changes" if sh(["git", "-C", ROOT, "status", "--porcelain", "Sources"]) else ""),
        "llama_cpp_commit": sh(["git", "-C", LLAMA_CPP, "rev-parse", "--short", "HEAD"]),
        "libqwen_so": library_identity(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


def library_identity():
    """The libqwen.so qwen-bench runs against (bench/run.sh snapshots it next to qwen-bench)."""
    lib = os.path.join(os.path.dirname(QWEN_BENCH), "libqwen.so")
    if not os.path.exists(lib):
        lib = os.path.join(ROOT, ".build", "release", "libqwen.so")
    if not os.path.exists(lib):
        return "?"
    import hashlib
    with open(lib, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    built = datetime.datetime.fromtimestamp(os.path.getmtime(lib)).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"`{rel(lib)}` (sha256 {digest}…, built {built})"


def bandwidth(threads, mib, passes):
    out = subprocess.run([MEMBW, "-s", str(mib), "-p", str(passes), "-t", ",".join(map(str, threads)), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return {int(k): v for k, v in json.loads(out)["read_gbps"].items()}


# ---------------------------------------------------------------- report
def write_report(path, md):
    """Writes the text-model report to `path`, keeping what an existing file has from its second top-level heading
    on (the vision and audio section that bench/media.py's runs add by hand)."""
    tail = ""
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines(keepends=True)
        later = [i for i, line in enumerate(lines) if line.startswith("# ") and i > 0]
        if later:
            tail = "\n" + "".join(lines[later[0]:])
    with open(path, "w") as f:
        f.write(md.rstrip("\n") + "\n" + tail)


def ms(v):
    if not v:
        return "n/a"
    m = statistics.mean(v)
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    digits = 1 if m >= 20 else 2
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def mean(v):
    return statistics.mean(v) if v else None


def ratio(a, b):
    return f"{mean(a) / mean(b):.2f}" if a and b else "n/a"


def pct(x):
    return f"{x * 100:.0f}%" if x is not None else "n/a"


def report(res):
    a, m, bw = res["args"], res["machine"], res["bandwidth_bound"]
    L = []
    w = L.append
    w("# Benchmark results: libqwen vs llama.cpp\n")
    w(f"Taken {res['date']} with `{res['command']}`{' (quick mode: not comparable with full runs)' if a['quick'] else ''}.")
    w(f"Re-run: `bench/run.sh` (see `bench/README.md`). Raw numbers: `{res['raw_json']}` (not committed).\n")
    if res.get("resumed"):
        w(f"The run was interrupted and resumed (`--resume`) at {', '.join(res['resumed'])}.\n")
    if not res.get("complete", True):
        w("**Incomplete run**: only the cells below were measured.\n")
    if res.get("note"):
        w(res["note"] + "\n")
    w("## Machine\n")
    w(f"- CPU: {m['cpu']}, {m['vcpus']} vCPUs ({m['threads_per_core']} thread(s) per core); flags: {m['cpu_flags']}")
    w(f"- Caches: {m['caches']}")
    w(f"- Memory: {m['memory_gib']} GiB; kernel {m['kernel']}; {m['os']}")
    w(f"- {m['swift']}; {m['cc']}")
    w(f"- libqwen {res.get('libqwen_version', '?')} at commit {m['libqwen_commit']}, built with `swift build -c release`; "
      f"library {m.get('libqwen_so', '?')}")
    info = res.get("llama_info") or {}
    w(f"- llama.cpp: {res['llama_engine']}, commit {m['llama_cpp_commit']} (vendored in llama-cpp-python 0.3.36"
      + (f"; build {info.get('build_commit')} #{info.get('build_number')}" if info else "") + "), built with "
      "`-DGGML_NATIVE=ON` (Release, OpenMP)")
    if info:
        w(f"  - llama-bench reports: backend {info.get('backends')}, CPU `{info.get('cpu_info')}`, n_batch {info.get('n_batch')}, "
          f"n_ubatch {info.get('n_ubatch')}, KV {info.get('type_k')}/{info.get('type_v')}, flash_attn {info.get('flash_attn')} "
          f"(-1 = auto), load_mode {info.get('load_mode')}, repack {info.get('repack')}, poll {info.get('poll')}")
    w(f"- Load average at start / end: {' '.join(m['loadavg_start'])} / {' '.join(res['loadavg_end'])}; "
      f"CPU used by other processes during the benchmark processes: mean {res['others_mean']:.2f} cores, "
      f"max {res['others_max']:.2f} (from /proc/stat minus the benchmark's own CPU time)\n")

    w("## Memory read bandwidth (bench/membw.c)\n")
    runs = res["bandwidth_runs"]
    w(f"{a['bw_mib']} MiB read by all threads at once, from an array on 4 KiB pages and one on 2 MiB huge pages "
      f"(passes alternate between them; {a['bw_passes']} passes each); a measurement's best pass is the faster page "
      f"size's best. Measured {len(runs)} times (at the start, before each model file, at the end). The bound below "
      "uses, per thread count, the median over the measurements of their best pass (robust to the outliers this "
      "shared VM produces; the highest is shown too).\n")
    w("| threads | bound GB/s (median of bests) | highest best | per measurement: best GB/s, in run order | "
      "median of the medians | median of bests: 4 KiB / huge pages |")
    w("|---|---|---|---|---|---|")
    for t in a["threads"]:
        bests = [r["gbps"][str(t)]["best"] for r in runs]
        meds = [r["gbps"][str(t)]["median"] for r in runs]
        by_page = [[r["gbps"][str(t)][k]["best"] for r in runs if k in r["gbps"][str(t)]] for k in ("small_pages", "huge_pages")]
        pages = " / ".join(f"{statistics.median(v):.1f}" for v in by_page) if all(by_page) else "n/a"
        w(f"| {t} | {bw[str(t)]:.1f} | {max(bests):.1f} | {' '.join(f'{x:.1f}' for x in bests)} | "
          f"{statistics.median(meds):.1f} | {pages} |")
    w("")
    if a.get("bw_probe_mib"):
        w(f"Round probe: just before each engine's round, `membw -s {a['bw_probe_mib']} -p {a['bw_probe_passes']} -t T` "
          "(same method, smaller); its best pass is that round's own bound, which follows the bandwidth's drift over the "
          "run. The results give the median over rounds of tg × MB/token ÷ that round's probe.\n")

    pp, tg = f"pp{a['p']}", f"tg{a['n']}"
    w("## Results\n")
    w(f"Tokens/s as mean ± sd over {a['r']} alternating rounds (one fresh process per engine and round, each after "
      "its own warm-up). Ratio = libqwen / llama.cpp (> 1: libqwen faster). Decode MB/token = weight bytes a decode "
      "step reads (all tensors; the tied embedding counted once, as the output head, plus one row for the lookup). "
      "% of bound = tg × MB/token ÷ bandwidth at that thread count; % of round probe = the median over rounds of "
      "tg × MB/token ÷ the bandwidth probed just before that round. Peak RSS = whole process, mapped weights included.\n")
    w(f"| model | type | threads | {pp} libqwen | {pp} llama.cpp | {pp} ratio | {tg} libqwen | {tg} llama.cpp | "
      f"{tg} ratio | decode MB/token | bound t/s | libqwen % of bound | llama.cpp % of bound | "
      "libqwen / llama.cpp % of round probe | peak RSS MiB libqwen / llama.cpp |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in res["cells"]:
        f, o, l = c["file"], c["ours"], c["llama"]
        bound = bw[str(c["threads"])] * 1e9 / f["decode_bytes"]
        frac = lambda r: mean(r["tg"]) / bound if r["tg"] else None  # noqa: E731
        rss = lambda r: f"{max(r['rss']):.0f}" if r["rss"] else "n/a"  # noqa: E731
        probed = lambda r: (statistics.median(tg * f["decode_bytes"] / (bw_ * 1e9) for tg, bw_ in r["tg_probe"])  # noqa: E731
                            if r.get("tg_probe") else None)
        ours_pp = ms(o["pp"]) if o["pp"] or not o.get("error") else "error"
        ours_tg = ms(o["tg"]) if o["tg"] or not o.get("error") else "error"
        w(f"| {SHAPE_NAMES[c['size']]} | {c['type'].upper()} | {c['threads']} | {ours_pp} | {ms(l['pp'])} | "
          f"{ratio(o['pp'], l['pp'])} | {ours_tg} | {ms(l['tg'])} | {ratio(o['tg'], l['tg'])} | "
          f"{f['decode_bytes'] / 1e6:.0f} | {bound:.1f} | {pct(frac(o))} | {pct(frac(l))} | "
          f"{pct(probed(o))} / {pct(probed(l))} | {rss(o)} / {rss(l)} |")
    if a["r"] > 1:
        w(f"\nBest round of each engine (the least disturbed one on a shared machine; same columns otherwise):\n")
        w(f"| model | type | threads | {pp} libqwen | {pp} llama.cpp | {pp} ratio | {tg} libqwen | {tg} llama.cpp | "
          f"{tg} ratio | libqwen % of bound | llama.cpp % of bound |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        best = lambda v: f"{max(v):.1f}" if v else "n/a"  # noqa: E731
        bratio = lambda x, y: f"{max(x) / max(y):.2f}" if x and y else "n/a"  # noqa: E731
        for c in res["cells"]:
            o, l = c["ours"], c["llama"]
            bound = bw[str(c["threads"])] * 1e9 / c["file"]["decode_bytes"]
            bfrac = lambda r: max(r["tg"]) / bound if r["tg"] else None  # noqa: E731
            w(f"| {SHAPE_NAMES[c['size']]} | {c['type'].upper()} | {c['threads']} | {best(o['pp'])} | {best(l['pp'])} | "
              f"{bratio(o['pp'], l['pp'])} | {best(o['tg'])} | {best(l['tg'])} | {bratio(o['tg'], l['tg'])} | "
              f"{pct(bfrac(o))} | {pct(bfrac(l))} |")
    errors = [c for c in res["cells"] if c["ours"].get("error") or c["llama"].get("error")]
    if errors:
        w("\nErrors:\n")
        for c in errors:
            for who in ("ours", "llama"):
                if c[who].get("error"):
                    w(f"- {'libqwen' if who == 'ours' else 'llama.cpp'} on `{os.path.basename(c['path'])}` "
                      f"({c['threads']} threads), {c[who].get('failed', 1)} round(s) failed: {c[who]['error']}")
    w("\n## Files\n")
    w("Load ms: the file's first load in the run (its pages were evicted by the files and bandwidth probes before it, so "
      "this includes reading the metadata back from disk), then the mean and the highest of the later loads (page cache "
      "warm; the < 100 ms target is for a mapped file without page faults).\n")
    w("| file | MiB | tensor types (share of bytes) | decode MB/token | libqwen load ms: first | later: mean | later: max |")
    w("|---|---|---|---|---|---|---|")
    seen = set()
    for c in res["cells"]:
        if c["path"] in seen:
            continue
        seen.add(c["path"])
        f = c["file"]
        loads = [x for cc in res["cells"] if cc["path"] == c["path"] for x in cc["ours"]["load_ms"]]
        later = loads[1:]
        times = (f"{loads[0]:.1f} | {statistics.mean(later):.1f} | {max(later):.1f}" if later else
                 f"{loads[0]:.1f} | n/a | n/a" if loads else "n/a | n/a | n/a")
        w(f"| `{rel(c['path'])}` | {f['file_bytes'] / 2**20:.0f} | {f['mix']} | {f['decode_bytes'] / 1e6:.0f} | {times} |")
    w("\n## Per-round samples (tokens/s, in run order)\n")
    w(f"| model | type | threads | {pp} libqwen | {pp} llama.cpp | {tg} libqwen | {tg} llama.cpp | "
      "round probe GB/s libqwen / llama.cpp | other CPU load (cores) |")
    w("|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: " ".join(f"{x:.1f}" for x in v) or "n/a"  # noqa: E731
    for c in res["cells"]:
        o, l = c["ours"], c["llama"]
        w(f"| {c['size']} | {c['type']} | {c['threads']} | {fmt(o['pp'])} | {fmt(l['pp'])} | {fmt(o['tg'])} | "
          f"{fmt(l['tg'])} | {fmt([p for _, p in o.get('tg_probe', [])])} / {fmt([p for _, p in l.get('tg_probe', [])])} | "
          f"{' '.join(f'{x:.2f}' for x in c['others'])} |")
    w("\n## Commands (one round of one cell)\n")
    c0 = res["cells"][0] if res["cells"] else None
    if c0:
        w("```sh")
        w(c0["ours"]["cmd"])
        w(c0["llama"]["cmd"])
        w(f"{rel(MEMBW)} -s {a['bw_mib']} -p {a['bw_passes']} -t {','.join(map(str, a['threads']))} --json")
        w("```")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="0.5b,1.5b")
    ap.add_argument("--types", default="f16,q8_0,q4_0,q4_k_m")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("-r", type=int, default=3, help="rounds (fresh processes) per engine and cell")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-b", type=int, default=512, help="n_batch (and llama.cpp's n_ubatch)")
    ap.add_argument("--quick", action="store_true", help="0.5b, q8_0+q4_0, -p 64 -n 16 -r 1, small bandwidth probe")
    ap.add_argument("--llama", choices=["auto", "llama-bench", "python", "none"], default="auto")
    ap.add_argument("--bw-mib", type=int, default=1024)
    ap.add_argument("--bw-passes", type=int, default=10)
    ap.add_argument("--bw-probe-mib", type=int, default=512, help="size of the probe before each round (0: none)")
    ap.add_argument("--bw-probe-passes", type=int, default=8)
    ap.add_argument("--report", help="also write the Markdown report to this file")
    ap.add_argument("--note", help="text placed under the report's title")
    ap.add_argument("--resume", metavar="JSON", help="continue an interrupted run from its raw JSON (same settings)")
    ap.add_argument("--render", metavar="JSON", help="only re-render the report of an earlier run's raw JSON")
    ap.add_argument("--command", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            old = json.load(f)
        if a.note is not None:
            old["note"] = a.note
        md = report(old)
        print(md)
        if a.report:
            write_report(a.report, md)
        return
    resumed = None
    if a.resume:
        with open(a.resume) as f:
            resumed = json.load(f)
        old = resumed["args"]
        a.models, a.types, a.threads = ",".join(old["models"]), ",".join(old["types"]), ",".join(map(str, old["threads"]))
        a.r, a.p, a.n, a.b, a.bw_mib, a.bw_passes = old["r"], old["p"], old["n"], old["b"], old["bw_mib"], old["bw_passes"]
        a.bw_probe_mib, a.bw_probe_passes = old.get("bw_probe_mib", 0), old.get("bw_probe_passes", 0)
        a.quick = False
    if a.quick:
        given = set(sys.argv[1:])
        a.models = a.models if "--models" in given else "0.5b"
        a.types = a.types if "--types" in given else "q8_0,q4_0"
        a.p = a.p if "-p" in given else 64
        a.n = a.n if "-n" in given else 16
        a.r = a.r if "-r" in given else 1
        a.bw_mib, a.bw_passes = (a.bw_mib if "--bw-mib" in given else 256), (a.bw_passes if "--bw-passes" in given else 3)
    sizes = a.models.replace(",", " ").split()
    kinds = a.types.replace(",", " ").split()
    a.threads = [int(t) for t in a.threads.replace(",", " ").split()]

    if a.llama == "auto":
        a.llama = "llama-bench" if os.access(LLAMA_BENCH, os.X_OK) else "python"
    engine = {"llama-bench": LlamaBench, "python": LlamaPython}.get(a.llama)
    llama = engine() if engine else None
    ours = Ours()
    for p in (QWEN_BENCH, MEMBW):
        if not os.access(p, os.X_OK):
            raise SystemExit(f"missing {p}: run bench/run.sh (or bench/setup.sh and `make -C samples`)")

    res = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
           "command": a.command or " ".join(shlex.quote(x) for x in ["bench/run.py", *sys.argv[1:]]),
           "note": a.note, "machine": machine(), "llama_engine": llama.name if llama else "none",
           "args": dict(models=sizes, types=kinds, threads=a.threads, r=a.r, p=a.p, n=a.n, b=a.b, quick=a.quick,
                        bw_mib=a.bw_mib, bw_passes=a.bw_passes, bw_probe_mib=a.bw_probe_mib,
                        bw_probe_passes=a.bw_probe_passes), "cells": []}
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    res["bandwidth_runs"] = []
    os.makedirs(os.path.join(CACHE, "results"), exist_ok=True)
    raw = os.path.join(CACHE, "results", datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    if resumed:
        res, raw = resumed, a.resume
        res.setdefault("resumed", []).append(datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
        log(f"resuming {rel(raw)}: {len(res['cells'])} cells done")
    res["raw_json"] = rel(raw)

    def save(complete):
        res["complete"] = complete
        res["bandwidth_bound"] = {str(t): statistics.median(r["gbps"][str(t)]["best"] for r in res["bandwidth_runs"])
                                  for t in a.threads}
        res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        others = [x for c in res["cells"] for x in c["others"]] or [0.0]
        res["others_mean"], res["others_max"] = statistics.mean(others), max(others)
        res["libqwen_version"] = (res.get("libqwen_info") or {}).get("libqwen_version", "?")
        with open(raw + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(raw + ".tmp", raw)

    def measure_bandwidth(when):
        r = bandwidth(a.threads, a.bw_mib, a.bw_passes)
        res["bandwidth_runs"].append({"when": when, "gbps": {str(k): v for k, v in r.items()}})
        log(f"bandwidth ({when}): " + ", ".join(f"{t} threads {v['best']:.1f} GB/s" for t, v in r.items()))

    measure_bandwidth("start")

    for size in sizes:
        for kind in kinds:
            path = os.path.join(CACHE, f"qwen25-{size}-{kind}.gguf")
            if all(any(c["size"] == size and c["type"] == kind and c["threads"] == t for c in res["cells"])
                   for t in a.threads):
                continue  # done before --resume
            if not os.path.exists(path):
                log(f"making {rel(path)} (bench/make_models.py)...")
                subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_models.py"), "--models", size,
                                "--types", kind], check=True)
            facts = gguf_facts(path)
            measure_bandwidth(os.path.basename(path))
            for t in a.threads:
                if any(c["size"] == size and c["type"] == kind and c["threads"] == t for c in res["cells"]):
                    continue
                cell = dict(size=size, type=kind, threads=t, path=path, file=facts, others=[],
                            ours=dict(pp=[], tg=[], rss=[], load_ms=[], cmd=""),
                            llama=dict(pp=[], tg=[], rss=[], load_ms=[], cmd=""))
                for rnd in range(a.r):
                    order = [("ours", ours), ("llama", llama)]
                    if rnd % 2:
                        order.reverse()
                    for who, eng in order:
                        slot = cell[who]
                        if eng is None or (slot.get("error") and not slot["rss"]):
                            continue  # failed in every round so far (e.g. an unsupported weight type)
                        cmd = eng.cmd(path, a, t)
                        slot["cmd"] = " ".join(shlex.quote(rel(x)) for x in cmd)
                        probe = bandwidth([t], a.bw_probe_mib, a.bw_probe_passes)[t]["best"] if a.bw_probe_mib else None
                        out, err, code, rss, wall, others = run_child(cmd)
                        cell["others"].append(others)
                        try:
                            if code != 0:
                                raise ValueError((err.strip().splitlines() or [f"exit code {code}"])[-1])
                            r = eng.parse(out)
                        except (ValueError, KeyError) as e:
                            slot["error"] = str(e)[:300]
                            slot["failed"] = slot.get("failed", 0) + 1
                            log(f"  {eng.name} {os.path.basename(path)} t={t}: {slot['error']}")
                            continue
                        slot["pp"] += r["pp"]
                        slot["tg"] += r["tg"]
                        if probe and len(r["tg"]) == 1:
                            slot.setdefault("tg_probe", []).append([r["tg"][0], probe])
                        slot["rss"].append(rss)
                        if r["load_ms"] is not None:
                            slot["load_ms"].append(r["load_ms"])
                        if r["info"]:
                            res["libqwen_info" if who == "ours" else "llama_info"] = r["info"]
                        log(f"  {eng.name:16} {os.path.basename(path):24} t={t} round {rnd + 1}/{a.r}: "
                            f"pp {fmt_list(r['pp'])} tg {fmt_list(r['tg'])} t/s, RSS {rss:.0f} MiB, "
                            f"{wall:.0f} s, others {others:.2f} cores"
                            + (f", probe {probe:.1f} GB/s" if probe else ""))
                res["cells"].append(cell)
                save(False)

    measure_bandwidth("end")
    save(True)
    md = report(res)
    print(md)
    if a.report:
        write_report(a.report, md)
        log(f"wrote {a.report} and {rel(raw)}")


def fmt_list(v):
    return "/".join(f"{x:.1f}" for x in v) or "-"


if __name__ == "__main__":
    main()
