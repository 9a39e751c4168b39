"""llama.cpp's converter, run through make_fixtures.py's wrapper for the benchmark model makers (bench/vision,
bench/audio): skips files that exist, keeps the converter's output in a log beside the models."""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
import make_fixtures as mf  # noqa: E402


def convert(src, out, outtype, *extra):
    """Converts the Hugging Face folder src to the GGUF file out (outtype f16/q8_0/..., extra converter options)."""
    if out.exists():
        return
    log_path = out.parent / f"convert-{out.stem}.log"
    with open(log_path, "w") as log:
        r = subprocess.run([sys.executable, mf.__file__, "_convert", str(src), str(out), outtype, *extra], stdout=log,
                           stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise SystemExit(f"convert failed: {out} (see {log_path})")
    print(f"  {out.name}: {out.stat().st_size / 2**20:.0f} MiB", flush=True)
