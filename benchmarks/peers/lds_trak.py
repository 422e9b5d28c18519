"""LDS against the number of trained models: AME, influence and TRAK side by side (issue 27).

    .venv/bin/python benchmarks/peers/lds_trak.py                  # MLP and CNN, k = 10, 50, 100
    .venv/bin/python benchmarks/peers/lds_trak.py --networks mlp --ks 10,50,100,500

Same data, network and models for every method: scikit-learn's digits (``dw.load_dataset(
"digits", seed=0)``: 1,258 training rows, the first ``--targets`` test rows explained), the
network ``--model mlp`` or ``--model cnn`` trains (``network_learner``, 200 Adam steps whatever
the subset). The ground truth is ``dataworth.evaluate.lds``: 100 models on random halves of the
training rows (their own random stream), output log p/(1-p) of the true class (TRAK's).

For each ``k``, the *same* ``k`` trained models serve all three methods: the first ``k`` subsets
of AME's design (p uniform on {0.2, 0.4, 0.6, 0.8}, then Bernoulli(p) per row), trained once
through the engine; a learner subclass keeps each model's parameters as it trains them.

- AME: the LASSO of ``dw.ame(target=rows)`` on those ``k`` models' outputs;
- IF-k: influence functions with the damped Fisher
  (:func:`~dataworth.methods.gradients.network_influence.fisher_influence_matrix`) at each of the
  ``k`` checkpoints, averaged (an ensemble, as TRAK's);
- TRAK-k: ``traker`` 0.3.2 in its own environment (``benchmarks/peers/.venv-trak``,
  ``run_trak.py``) on the same ``k`` checkpoints, proj_dim 512 (dattri's setting), CPU
  ``BasicProjector``.

References at one model: influence and gradient similarity at the full-data network, KNN-Shapley
(no model). Each figure is the mean LDS over the explained test rows with its 95% Student-t
interval. Writes ``benchmarks/peers/out/lds_trak.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TRAK_PYTHON = HERE / ".venv-trak" / "bin" / "python"


def keeping_learner(name: str, seed: int, shared_init: bool = False):
    """The network's learner, which also keeps the parameters of every model it trains."""
    import torch

    from dataworth.learners.torch.learner import TorchLearner
    from dataworth.learners.torch.networks import network_learner

    class Keeper(TorchLearner):
        # Same fingerprint, seeds and arithmetic as the learner it copies: only keeps params.
        def predict_proba_batch(self, task, masks):
            out = np.empty((len(masks), task.n_test, task.n_classes))
            with self._threads():
                for start in range(0, len(masks), self.max_parallel):
                    chunk = masks[start : start + self.max_parallel]
                    padded = self._pad(chunk)
                    trained = self._fit_chunk(task, padded)
                    proba = self._predict(task, padded, trained)
                    out[start : start + len(chunk)] = proba[: len(chunk)].to("cpu", torch.float64)
                    if self.keep:
                        for j in range(len(chunk)):
                            params = {
                                k: v[j].detach().cpu().clone() for k, v in trained.params.items()
                            }
                            self.kept.append((chunk[j].copy(), params))
            return out

    base = network_learner(name, seed=seed, device="cpu")
    keeper = Keeper.__new__(Keeper)
    keeper.__dict__.update(base.__dict__)
    keeper.keep, keeper.kept = False, []
    keeper.shared_init = shared_init
    return keeper


def checkpoint_of(learner, task, mask, params):
    """A :class:`~dataworth.methods.gradients.per_example.Checkpoint` of kept parameters."""
    import torch

    from dataworth.methods.gradients.per_example import Checkpoint

    base = learner._new_module(task, learner.seed).eval()
    offsets = learner._class_offsets(task, mask[None, :])[0]
    return Checkpoint(base, dict(params), {}, offsets, torch.device("cpu"), torch.float32)


def ensemble_influence(learner, task, rows, kept, ks):
    """IF-k for each k: the damped-Fisher influence averaged over the first k checkpoints."""
    import dataworth.methods.gradients.per_example as ng
    from dataworth.methods.gradients.network_influence import fisher_influence_matrix

    total, out, times, start = 0.0, {}, {}, time.perf_counter()
    for j, (mask, params) in enumerate(kept[: max(ks)], start=1):
        ck = checkpoint_of(learner, task, mask, params)
        t_grads = ng.output_gradients(ck, task.X_test[rows], task.y_test[rows], "log_odds")
        l_grads = ng.loss_gradients(ck, task.X_train, task.y_train)
        total = total + fisher_influence_matrix(t_grads.double().numpy(), l_grads.double().numpy())
        if j in ks:
            out[j], times[j] = total / j, time.perf_counter() - start
    return out, times


def run_trak(task, rows, learner, kept, ks, folder: Path):
    """TRAK's scores for each k (from its own environment) and its record."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "data.npz",
        X_train=task.X_train,
        y_train=task.y_train,
        X_target=task.X_test[rows],
        y_target=task.y_test[rows],
    )
    module = learner._new_module(task, learner.seed).to("cpu").eval()
    torch.save(
        {"module": module, "state_dicts": [p for _, p in kept[: max(ks)]]},
        folder / "checkpoints.pt",
    )
    cmd = [str(TRAK_PYTHON), str(HERE / "run_trak.py"), str(folder), "--ks", ",".join(map(str, ks))]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - start
    record = json.loads((folder / "trak.json").read_text()) | {"wall_s": wall}
    return {k: np.load(folder / f"trak_k{k}.npy") for k in ks}, record


def one_network(
    name: str,
    ks: list[int],
    n_targets: int,
    gt_models: int,
    seed: int,
    law: str = "grid",
    shared_init: bool = False,
) -> dict:
    import dataworth as dw
    from dataworth.evaluate.attributions import attribution_matrix
    from dataworth.evaluate.lds import ground_truth, lds_subsets, score_attributions

    task = dw.load_dataset("digits", seed=seed)
    rows = list(range(min(n_targets, task.n_test)))
    learner = keeping_learner(name, seed, shared_init)
    u = dw.Utility(task, learner=learner, per_prediction="log_odds", seed=seed)
    # The ground truth is always the network as `--model` trains it (each model its own init).
    truth = dw.Utility(task, learner=name, per_prediction="log_odds", seed=seed, device="cpu")
    t0 = time.perf_counter()
    masks = lds_subsets(task.n_train, gt_models, seed=seed)
    outputs = ground_truth(truth, masks, rows)
    gt_s = time.perf_counter() - t0
    print(f"[{name}] ground truth: {gt_models} models in {gt_s:.0f} s", flush=True)

    records = []

    def add(method, k, matrix, seconds):
        r = score_attributions(method, matrix, masks, outputs, models=k, seconds=seconds)
        records.append(r.to_dict() | {"network": name})
        print(
            f"[{name}] {method:<20} k={k:<4} LDS {r.lds:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
            f"{seconds:.0f} s",
            flush=True,
        )

    learner.keep = True
    fit_s = 0.0
    for k in ks:
        t0 = time.perf_counter()
        before = len(learner.kept)
        matrix = attribution_matrix(u, "ame", rows, n_models=k, seed=seed, ame_law=law)
        seconds = time.perf_counter() - t0
        fit_s += seconds
        print(f"[{name}] AME k={k}: {len(learner.kept) - before} new models", flush=True)
        add("ame", k, matrix, fit_s)  # cumulative: the models up to k and this LASSO
    learner.keep = False
    kept = learner.kept
    assert len(kept) >= max(ks), (len(kept), max(ks))

    ifs, if_times = ensemble_influence(learner, task, rows, kept, ks)
    for k in ks:
        add("influence", k, ifs[k], if_times[k])
    trak, trak_record = run_trak(
        task, rows, learner, kept, ks, OUT / f"trak-{name}-{law}-{int(shared_init)}"
    )
    for k in ks:
        add("trak", k, trak[k], trak_record["featurize_s"] + trak_record["score_s"])
    for method in ("influence", "gradient_similarity", "knn_shapley"):
        t0 = time.perf_counter()
        matrix = attribution_matrix(u, method, rows, seed=seed)
        add(
            f"{method} (full data)",
            1 if method != "knn_shapley" else 0,
            matrix,
            time.perf_counter() - t0,
        )
    return {
        "network": name,
        "ame_law": law,
        "shared_init": shared_init,
        "n_train": task.n_train,
        "targets": len(rows),
        "ground_truth_models": gt_models,
        "ground_truth_s": gt_s,
        "trak": trak_record,
        "results": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="mlp,cnn")
    parser.add_argument("--ks", default="10,50,100")
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--gt-models", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--law", default="grid", help="AME's law of p: grid (the paper's), banzhaf")
    parser.add_argument(
        "--shared-init",
        action="store_true",
        help="the methods' k models start from one initialisation (common random numbers)",
    )
    args = parser.parse_args()
    if not TRAK_PYTHON.exists():
        sys.exit("TRAK's environment is missing: run `bash benchmarks/peers/setup.sh` first.")
    ks = sorted(int(k) for k in args.ks.split(","))
    OUT.mkdir(exist_ok=True)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, cpus {os.cpu_count()}")
    runs = [
        one_network(n, ks, args.targets, args.gt_models, args.seed, args.law, args.shared_init)
        for n in args.networks.split(",")
    ]
    summary = {
        "ks": ks,
        "load_at_start": load,
        "load_at_end": os.getloadavg(),
        "runs": runs,
        "date": time.strftime("%Y-%m-%d"),
    }
    stem = f"lds_trak-{args.law}{'-shared' if args.shared_init else ''}"
    (OUT / f"{stem}.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print("\n| network | method | models | LDS | 95% interval | seconds |")
    print("|---|---|---:|---:|---|---:|")
    for run in runs:
        for r in run["results"]:
            print(
                f"| {run['network']} | {r['method']} | {r['models']} | {r['lds']:.3f} | "
                f"{r['ci_low']:.3f} to {r['ci_high']:.3f} | {r['seconds']:.0f} |"
            )


if __name__ == "__main__":
    main()
