"""The backdoor experiment at c = 8 on CUDA when a GPU is available (else on the CPU, said so).

Run with ``python benchmarks/bench_torch_gpu.py``; prints the same table as
``benchmarks/bench_backdoor.py --grid 8`` (extra arguments are passed on to it), with the device
named in its first line. The CPU path stays the default everywhere else; this script only shows
that the same experiment runs unchanged on a GPU and how long it takes there.
"""

from __future__ import annotations

import sys

import torch

from bench_backdoor import main

if __name__ == "__main__":
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        print("No CUDA device here: the GPU benchmark runs on the CPU.")
    main(["--grid", "8", *sys.argv[1:]], device=device)
