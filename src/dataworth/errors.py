"""The one exception users see: one line saying what is wrong and how to fix it."""

from __future__ import annotations


class DataworthError(ValueError):
    """Bad input or an impossible request, reported to the user in one line.

    The CLI prints ``str(error)`` and exits with code 2, without a traceback. Library callers
    can catch it like any ``ValueError``.
    """
