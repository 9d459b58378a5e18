"""Conversion time and peak memory for a 1024² StyleGAN2 config-F checkpoint (issue 5).

Random weights are written in NVIDIA's pickle layout (a snapshot dict with `G`, `G_ema` and a small `D`,
as stylegan2-ada-pytorch saves them; built with the tests' fake-pickle helper, no NVIDIA code) and in
rosinality's `.pt` layout. Each conversion (`SefaPipeline.from_checkpoint(src).save_pretrained(out)`)
runs in a fresh subprocess that reports its wall time and its peak RSS during the conversion (the
high-water mark is reset after the imports), and how far that peak rises above the RSS before it.

    python benchmarks/bench_convert.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "convert")]

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from sefa_plugin import SefaPipeline

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024  # MB

src, out = sys.argv[1], sys.argv[2]
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak RSS (VmHWM) after the imports
    fh.write("5")
before = status("VmRSS:")
t0 = time.perf_counter()
SefaPipeline.from_checkpoint(src).save_pretrained(out)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": status("VmHWM:")}))
"""


def run_child(src: str, out: str) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, src, out], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=1024)
    args = parser.parse_args()
    from nvidia_fakes import nvidia_pickle_bytes
    from test_convert_nvidia import nvidia_snapshot
    from test_convert_rosinality import to_rosinality

    from sefa_plugin import StyleGAN2Generator

    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=512, w_dim=512, img_resolution=args.resolution).eval()
    n_params = sum(p.numel() for p in g.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nv = tmp / "network-snapshot.pkl"
        nv.write_bytes(nvidia_pickle_bytes(nvidia_snapshot(g)))
        ros = tmp / "550000.pt"
        state, latent_avg = to_rosinality(g)
        torch.save({"g_ema": state, "latent_avg": latent_avg}, ros)
        # What rosinality's train.py saves: g, d, g_ema and both Adam states (distinct random stand-ins of
        # the generator's sizes for d and the optimizer moments; only g_ema is read by the converter).
        ros_train = tmp / "train-550000.pt"

        def stand_in(like: dict) -> dict:
            return {k: torch.randn_like(v) for k, v in like.items()}

        def adam(like: dict) -> dict:
            pairs = zip(stand_in(like).values(), stand_in(like).values(), strict=True)
            moments = {
                i: {"step": torch.tensor(1.0), "exp_avg": a, "exp_avg_sq": b.abs()} for i, (a, b) in enumerate(pairs)
            }
            return {"state": moments, "param_groups": [{"lr": 0.002, "params": list(range(len(like)))}]}

        checkpoint = {"g": stand_in(state), "d": stand_in(state), "g_ema": state, "latent_avg": latent_avg}
        torch.save({**checkpoint, "g_optim": adam(state), "d_optim": adam(state)}, ros_train)
        del checkpoint
        del g, state
        print(f"StyleGAN2 {args.resolution}² config F: {n_params / 1e6:.1f} M generator parameters")
        cases = (
            ("nvidia pickle (G + G_ema + D)", nv),
            ("rosinality .pt (g_ema only)", ros),
            ("rosinality .pt (train.py: g, d, g_ema, optimizers)", ros_train),
        )
        for name, src in cases:
            r = run_child(str(src), str(tmp / f"out-{src.stem}"))
            size_mb = src.stat().st_size / 2**20
            added = r["peak_rss_mb"] - r["rss_before_mb"]
            print(
                f"{name}: file {size_mb:.0f} MB; conversion + save {r['seconds']:.2f} s; peak RSS "
                f"{r['peak_rss_mb']:.0f} MB, {added:.0f} MB above the {r['rss_before_mb']:.0f} MB before "
                f"({added / size_mb:.2f}x the file)"
            )


if __name__ == "__main__":
    main()
