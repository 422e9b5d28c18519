"""Stable keys for training subsets.

The evaluation store caches ``U(S)`` under a key derived from the subset's boolean mask. The key
must be identical across processes, machines, Python versions and runs, so it is a cryptographic
digest of the packed mask bits, never Python's ``hash()`` (which is salted per process for
``bytes`` and ``str``).
"""

from __future__ import annotations

import hashlib

import numpy as np

from dataworth.errors import DataworthError

#: Length of a subset key in bytes. 128 bits keep the chance of any collision among even 10^12
#: distinct subsets below 10^-14, while keeping the store's index small.
KEY_BYTES = 16

# Bumped if the key derivation ever changes, so that old and new keys can never be confused.
_KEY_DOMAIN = b"dataworth-subset-v1"


def _as_mask_matrix(masks: np.ndarray, ndim: int) -> np.ndarray:
    """Validate masks and return them as a boolean array with ``ndim`` dimensions."""
    arr = np.asarray(masks)
    if arr.ndim != ndim:
        shape = "(N,)" if ndim == 1 else "(K, N)"
        raise DataworthError(
            f"A subset mask array must have shape {shape}; got an array of shape {arr.shape}."
        )
    if arr.dtype != np.bool_:
        # Accept 0/1 integer masks, but refuse anything else: silently treating 2 or -1 as
        # "included" would hide a bug in the caller.
        if not np.issubdtype(arr.dtype, np.integer) or not np.isin(arr, (0, 1)).all():
            raise DataworthError(
                f"A subset mask must be boolean (or 0/1 integers); got dtype {arr.dtype}."
            )
        arr = arr.astype(np.bool_)
    return arr


def _digest(n: int, packed_row: bytes) -> bytes:
    # The length is part of the key: packbits pads to whole bytes, so masks of different lengths
    # that share their leading bits would otherwise collide (e.g. [1] and [1, 0]).
    h = hashlib.sha256(_KEY_DOMAIN)
    h.update(n.to_bytes(8, "little"))
    h.update(packed_row)
    return h.digest()[:KEY_BYTES]


def subset_key(mask: np.ndarray) -> bytes:
    """Return the stable key of one subset.

    Parameters
    ----------
    mask : ndarray of shape (N,)
        Boolean inclusion mask over the N training points (0/1 integers are accepted).

    Returns
    -------
    bytes
        A ``KEY_BYTES``-long digest of the mask and its length. Equal masks give equal keys in
        every process and on every machine.

    Raises
    ------
    DataworthError
        If ``mask`` is not one-dimensional or not boolean.
    """
    arr = _as_mask_matrix(mask, ndim=1)
    return _digest(arr.shape[0], np.packbits(arr).tobytes())


def subset_keys(masks: np.ndarray) -> list[bytes]:
    """Return the stable keys of many subsets at once.

    Parameters
    ----------
    masks : ndarray of shape (K, N)
        One boolean inclusion mask per row.

    Returns
    -------
    list of bytes
        ``K`` keys, in row order; ``subset_keys(masks)[k] == subset_key(masks[k])``.

    Raises
    ------
    DataworthError
        If ``masks`` is not two-dimensional or not boolean.
    """
    arr = _as_mask_matrix(masks, ndim=2)
    n = arr.shape[1]
    # Packing the whole matrix at once is the expensive part done in C; each row of the packed
    # matrix is then a short contiguous byte string to hash.
    packed = np.ascontiguousarray(np.packbits(arr, axis=1))
    return [_digest(n, row.tobytes()) for row in packed]
