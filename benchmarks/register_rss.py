"""Peak memory of registering a large weights file: a ~512 MiB ``.safetensors`` and the same
tensors as a ``.pt`` checkpoint, each registered by a fresh process (``register_weights_file``);
the growth of its peak RSS across the call (``/proc/self/status`` sampled every 2 ms: in all,
anonymous, file-backed), against the file's size. Appends the
table to RESULTS.md.

    .venv/bin/python benchmarks/register_rss.py [--mib 512] [--no-append]

Goals (issue 11): .safetensors O(chunk); .pt at most ~1x the file (memory-mapped, converted a
tensor at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from datetime import datetime
from pathlib import Path

import safetensors.torch
import torch
from machine import RESULTS, ROOT, cpu_model

MIB = 1024**2
CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    sys.path.insert(0, sys.argv[2])
    from core import ModelMetadata, ModelStatus, configure, get_model_registry
    ctx = configure(sys.argv[1])
    import core.weights_intake, inference.architectures, inference.weights  # imported, not counted
    import bigarch
    meta = ModelMetadata(model_id="big", version="v1", status=ModelStatus.VALIDATION,
                         architecture="bigarch:build", training_config={"labels": ["a", "b"]})
    def status():  # kB: resident in all, anonymous (heap), file-backed (mapped files)
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return [int(fields[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile")]
    base, peak, done = status(), status(), threading.Event()
    def sample():  # ru_maxrss misses mapped file pages dropped before the call returns
        while not done.is_set():
            peak[:] = [max(p, n) for p, n in zip(peak, status())]
            time.sleep(0.002)
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    get_model_registry().register_weights_file(sys.argv[3], meta)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    size = get_model_registry().verify_weights("big", "v1")["size"]
    growth = [(p - b) / 1024 for p, b in zip(peak, base)]
    print(json.dumps({"growth_mb": growth[0], "anon_mb": growth[1], "file_mb": growth[2],
                      "stored": size, "s": seconds}))
    ctx.close()
    """
)


def architecture(width: int) -> str:
    return textwrap.dedent(
        f"""
        from torch import nn

        def build(num_classes, features):
            return nn.Sequential(nn.Linear({width}, {width}), nn.Linear({width}, num_classes))
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    width = int((args.mib * MIB / 4) ** 0.5)
    rows = []
    with tempfile.TemporaryDirectory(prefix="register-rss-") as tmp:
        folder = Path(tmp)
        (folder / "bigarch.py").write_text(architecture(width))
        state = {
            "0.weight": torch.randn(width, width),
            "0.bias": torch.zeros(width),
            "1.weight": torch.zeros(2, width),
            "1.bias": torch.zeros(2),
        }
        safetensors.torch.save_file(state, str(folder / "big.safetensors"))
        torch.save(state, folder / "big.pt")
        del state
        for name in ("big.safetensors", "big.pt"):
            path = folder / name
            home = folder / f"home-{name}"
            env = {**os.environ, "PYTHONPATH": str(ROOT), "NIGHTSCAN_HOME": str(home)}
            env.pop("NIGHTSCAN_DATABASE_URL", None)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(home), str(folder), str(path)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            size_mb = path.stat().st_size / MIB
            rows.append((name.split(".")[1], size_mb, result))
            print(
                f"{name:18s} file {size_mb:7.1f} MiB  peak RSS growth {result['growth_mb']:7.1f}"
                f" MiB ({result['growth_mb'] / size_mb:.2f}x; anonymous {result['anon_mb']:.1f},"
                f" mapped file {result['file_mb']:.1f})  {result['s']:.1f} s"
            )
    if args.no_append:
        return
    command = "python benchmarks/register_rss.py " + " ".join(sys.argv[1:])
    lines = [
        f"| .{kind} | {size:.1f} | {r['growth_mb']:.1f} | {r['growth_mb'] / size:.2f} | "
        f"{r['anon_mb']:.1f} | {r['file_mb']:.1f} | {r['s']:.1f} |"
        for kind, size, r in rows
    ]
    text = "\n".join([
        f"\n## Registering a large weights file: peak memory ({datetime.now():%Y-%m-%d %H:%M})\n",
        f"`{command.strip()}` - nproc {os.cpu_count()}, {cpu_model()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; each file registered by a "
        "fresh process (SQLite home); growth of its peak RSS across "
        f"`register_weights_file`; 1-minute load average {os.getloadavg()[0]:.2f} after.\n",
        "| file | size MiB | peak RSS growth MiB | growth / size | of it anonymous MiB | "
        "mapped file MiB | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *lines, "",
    ])  # fmt: skip
    with RESULTS.open("a") as fh:
        fh.write(text)
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
