"""TRAK (Park et al., ICML 2023; the ``traker`` package) on checkpoints dataworth trained.

Runs in TRAK's own environment (``benchmarks/peers/.venv-trak``, made by ``setup.sh``); needs only
torch, numpy and traker. ``lds_trak.py`` (the project's environment) writes the input folder:

- ``data.npz``: ``X_train``, ``y_train``, ``X_target``, ``y_target`` (the explained test rows);
- ``checkpoints.pt``: ``{"module": nn.Module, "state_dicts": [...]}``, the network and the
  trained parameters of each model, in the order of the subsets that trained them.

For each ``k`` of ``--ks``, TRAK's scores from the first ``k`` checkpoints go to
``trak_k{k}.npy`` (shape ``(targets, train)``), and ``trak.json`` records the times and settings.
Every checkpoint is featurized and scored once; ``finalize_scores(model_ids=...)`` ensembles the
first ``k``. On the CPU TRAKer uses its ``BasicProjector`` (Gaussian projection; the CUDA
``fast_jl`` projector is not available here), float32 (``use_half_precision=False``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from trak import TRAKer

BATCH = 2048  # every training row in one batch: the CPU projector redraws its matrix per batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ks", default="10,50,100")
    parser.add_argument("--proj-dim", type=int, default=512)  # dattri's TRAK setting
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    data = np.load(args.folder / "data.npz")
    saved = torch.load(args.folder / "checkpoints.pt", weights_only=False)
    module, states = saved["module"], saved["state_dicts"][: max(ks)]
    if len(states) < max(ks):
        raise SystemExit(f"{len(states)} checkpoints saved, {max(ks)} asked for")
    module = module.to("cpu").eval()
    X_train = torch.tensor(data["X_train"], dtype=torch.float32)
    y_train = torch.tensor(data["y_train"], dtype=torch.long)
    X_target = torch.tensor(data["X_target"], dtype=torch.float32)
    y_target = torch.tensor(data["y_target"], dtype=torch.long)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as save_dir:
        traker = TRAKer(
            model=module,
            task="image_classification",
            train_set_size=len(X_train),
            save_dir=save_dir,
            device="cpu",
            proj_dim=args.proj_dim,
            use_half_precision=False,
            logging_level=40,
        )
        for model_id, state in enumerate(states):
            traker.load_checkpoint(state, model_id=model_id)
            for i in range(0, len(X_train), BATCH):
                batch = (X_train[i : i + BATCH], y_train[i : i + BATCH])
                traker.featurize(batch=batch, num_samples=len(batch[0]))
        traker.finalize_features()
        featurized = time.perf_counter() - start
        for model_id, state in enumerate(states):
            traker.start_scoring_checkpoint(
                exp_name="lds",
                checkpoint=state,
                model_id=model_id,
                num_targets=len(X_target),
            )
            traker.score(batch=(X_target, y_target), num_samples=len(X_target))
        scored = time.perf_counter() - start
        finalize = {}
        for k in ks:
            t0 = time.perf_counter()
            scores = traker.finalize_scores(exp_name="lds", model_ids=list(range(k)))
            finalize[k] = time.perf_counter() - t0
            np.save(args.folder / f"trak_k{k}.npy", np.asarray(scores, dtype=np.float64).T)
    import trak

    record = {
        "traker": getattr(trak, "__version__", "0.3.2"),
        "torch": torch.__version__,
        "proj_dim": args.proj_dim,
        "projector": "BasicProjector (normal)",
        "checkpoints": len(states),
        "featurize_s": featurized,
        "score_s": scored - featurized,
        "finalize_s": finalize,
        "threads": torch.get_num_threads(),
    }
    (args.folder / "trak.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
