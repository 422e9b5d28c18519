"""Stand-in for ``torchvision`` inside the OpenDataVal environment (see README: why).

OpenDataVal imports torchvision at import time only to register its image datasets, which this
benchmark never loads. PyPI has no CPU build of torchvision, and the CUDA build cannot register
its operators against the CPU torch this machine may install, so ``import torchvision`` fails.
Installing this stand-in before importing OpenDataVal lets its tabular code load; any use of an
image dataset raises at once instead of silently doing something else.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types


class _Unavailable:
    """Accepts being built at import time; refuses to be used."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("torchvision is not available in this benchmark environment")

    def __getattr__(self, name: str):
        return _Unavailable()


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)

    def attribute(attr: str):
        if attr.startswith("__"):  # module protocol (__file__, __path__...): absent, as usual
            raise AttributeError(attr)
        return _Unavailable

    module.__getattr__ = attribute  # type: ignore[method-assign]
    return module


def install() -> None:
    """Put the stand-in modules in ``sys.modules``.

    Import ``torch`` and ``transformers`` first: transformers records at import whether
    torchvision is installed, and must see that it is not.
    """
    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.functional"]
    names += ["torchvision.datasets", "torchvision.models", "torchvision.models.resnet"]
    for name in names:
        sys.modules[name] = _module(name)
    for name in names[1:]:
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, sys.modules[name])
