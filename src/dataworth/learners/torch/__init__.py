"""PyTorch networks trained side by side on many subsets (the ``torch`` extra).

Lin et al. (ICML 2022) train each AME submodel for a fixed number of steps whatever its subset's
size; so do these learners, many submodels per call with ``torch.func.vmap``.

* ``networks``: the networks chosen by name (``--model mlp|cnn``), the device, and a
  scikit-learn classifier around them; importable without torch.
* ``learner``: :class:`TorchLearner`, the engine's learner.
* ``models``: the MLP and the small CNN; ``optimizer``: the optimizers' state.

Nothing here imports torch until a network is built, so the package loads without the extra.
"""

from __future__ import annotations

from dataworth.learners.torch.learner import TorchLearner, submodel_seed
from dataworth.learners.torch.models import MLP, SmallCNN, mlp, small_cnn
from dataworth.learners.torch.networks import (
    NETWORKS,
    NetworkClassifier,
    check_device,
    network_learner,
)

__all__ = [
    "MLP",
    "NETWORKS",
    "NetworkClassifier",
    "SmallCNN",
    "TorchLearner",
    "check_device",
    "mlp",
    "network_learner",
    "small_cnn",
    "submodel_seed",
]
