"""The backdoor experiment in miniature (``dataworth evaluate --task backdoor``), timed.

Run with ``python benchmarks/bench_backdoor.py`` (``--grid 8`` for c = 8 alone, ``--model mlp``
for the MLP, ``--score proba`` for the paper's utility). Prints the attack check, then for each
``c`` of ``m = c k log2 N`` and each method the mean precision and recall of the per-query
selections against the poisons, the models each method trained and its seconds, and the
machine's load average at the start and the end (timings on shared cores are inflated).

Defaults are the command's: the digits (1,437 training images), k = 20 poisons (a bright 3x3
patch, value 3, relabelled 0), 20 patched queries, the small CNN (100 Adam steps, one shared
initialisation), c in {1, 2, 4, 8}, every method. The fits run on the CPU with torch's threads.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from dataworth.cli.backdoor_command import show_backdoor
from dataworth.evaluate.backdoor.data import backdoor_digits
from dataworth.evaluate.backdoor.experiment import METHODS, run_backdoor
from dataworth.evaluate.backdoor.learner import backdoor_learner


def main(argv: list[str] | None = None, device: str = "cpu") -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="1,2,4,8", help="factors c, comma-separated")
    parser.add_argument("--model", default="cnn", choices=("cnn", "mlp"))
    parser.add_argument("--score", default="logit", choices=("logit", "proba"))
    parser.add_argument("--poisons", type=int, default=20)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"Device: {device}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}"
    )
    data = backdoor_digits(poisons=args.poisons, seed=args.seed)
    learner = backdoor_learner(args.model, seed=args.seed, device=device)
    start = time.perf_counter()
    report = run_backdoor(
        data,
        learner,
        grid=[int(c) for c in args.grid.split(",")],
        methods=args.methods.split(","),
        seed=args.seed,
        score=args.score,
        progress=lambda message: print(f"  [{time.perf_counter() - start:6.0f} s] {message}"),
    )
    show_backdoor(report)
    print(
        f"Wall time {time.perf_counter() - start:.0f} s; load average at end "
        f"{os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)"
    )


if __name__ == "__main__":
    main()
