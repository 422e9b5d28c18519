"""Act on the values: flag the rows that hurt, remove or relabel them, verify the gain.

:func:`~dataworth.clean.api.clean` is the public face (``dw.clean``). Its modules, one job each:
:mod:`~dataworth.clean.signals` (the evidence against each label and the suspicion),
:mod:`~dataworth.clean.removal` (removal curves and the count they choose),
:mod:`~dataworth.clean.crossfit` (one cross-fitted repeat: clean on part, measure on the rest),
:mod:`~dataworth.clean.intervals` (the Nadeau-Bengio interval over repeats) and
:mod:`~dataworth.clean.result` (:class:`CleanResult`). The design is in docs/design.md, section 9.
"""

from dataworth.clean.api import clean
from dataworth.clean.intervals import Interval, corrected_interval
from dataworth.clean.result import CleanResult

__all__ = ["CleanResult", "Interval", "clean", "corrected_interval"]
