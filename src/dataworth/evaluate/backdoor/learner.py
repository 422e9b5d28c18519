"""The networks of the backdoor experiment: the small CNN (default) or the MLP, sized for it.

Every submodel takes the same number of Adam steps whatever its subset's size (Lin et al.,
2022) and starts from one initialisation (common random numbers: the differences between
subsets are then not blurred by the initialisation's noise). The sizes are smaller than
``--model cnn``'s everywhere else (two convolutions of 4 and 8 channels, a hidden layer of 16,
100 steps): the experiment trains three times ``8 k log2 N`` networks (AME, LOO and TMC at the
same budget), 5,000 at the defaults, on two CPU cores.
"""

from __future__ import annotations

from typing import Any

from dataworth.errors import DataworthError

STEPS = 100
LEARNING_RATE = 0.03
BATCH_SIZE = 32


def backdoor_learner(name: str = "cnn", seed: int = 0, device: str | None = None) -> Any:
    """The batched learner of the experiment's ``cnn`` or ``mlp``.

    Parameters
    ----------
    name : {"cnn", "mlp"}
    seed : int
        The learner's seed (initialisation and each submodel's minibatches).
    device : {"auto", "cpu", "cuda"}, optional

    Returns
    -------
    TorchLearner
    """
    from dataworth.learners.torch.learner import TorchLearner
    from dataworth.learners.torch.models import mlp, small_cnn
    from dataworth.learners.torch.networks import torch_device

    if name not in ("cnn", "mlp"):
        raise DataworthError(f"The backdoor experiment trains cnn or mlp; got {name!r}.")
    factory = small_cnn(channels=(4, 8), hidden=16) if name == "cnn" else mlp((64,))
    return TorchLearner(
        factory,
        steps=STEPS,
        lr=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        seed=seed,
        device=torch_device(device),
        shared_init=True,
    )
