"""Hadamard matrices for balanced repeated replication, chosen as R ``survey`` does.

``hadamard(n)`` returns a 0/1 matrix (1 = +1) with at least ``n + 1`` rows:
row 0 is all ones and rows 1..n give the signs of the n strata. The order is
the smallest that R's ``survey::hadamard`` reaches with its constructions:
Sylvester (powers of two), Paley's construction for primes p = 3 (mod 4),
doubling ``[[A, A], [A, -A]]``, and stored matrices of orders 28 and 36.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._hadamard_data import ORDER_28, ORDER_36

_LARGEST_PRIME = 7919
_BASES = (4, 16, 28, 36)


def _primes_3_mod_4(limit: int) -> list[int]:
    sieve = np.ones(limit + 1, dtype=bool)
    sieve[:2] = False
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = False
    return [int(p) for p in np.flatnonzero(sieve) if p % 4 == 3]


_PRIMES = _primes_3_mod_4(_LARGEST_PRIME)
_PRIME_SET = frozenset(_PRIMES)


def sylvester(order: int) -> np.ndarray:
    """Sylvester matrix of a power-of-two order: entry 1 where ``popcount(i & j)`` is even."""
    idx = np.arange(order)
    both = idx[:, None] & idx[None, :]
    parity = np.zeros_like(both)
    while both.any():
        parity ^= both & 1
        both >>= 1
    return (parity == 0).astype(np.int8)


def paley(p: int) -> np.ndarray:
    """Paley matrix of order ``p + 1`` for a prime ``p = 3 (mod 4)``.

    Border of ones; inner entry (i, j) is 0 when ``(i + j) mod p`` is zero or a
    quadratic residue, 1 otherwise.
    """
    residues = np.zeros(p, dtype=bool)
    residues[(np.arange(1, p) ** 2) % p] = True
    residues[0] = True
    idx = np.arange(p)
    inner = (~residues[(idx[:, None] + idx[None, :]) % p]).astype(np.int8)
    out = np.ones((p + 1, p + 1), dtype=np.int8)
    out[1:, 1:] = inner
    return out


def double(matrix: np.ndarray, times: int = 1) -> np.ndarray:
    """``[[A, A], [A, 1 - A]]`` applied ``times`` times."""
    for _ in range(times):
        matrix = np.block([[matrix, matrix], [matrix, 1 - matrix]]).astype(np.int8)
    return matrix


def _stored(order: int) -> np.ndarray:
    if order in (4, 16):
        return sylvester(order)
    rows = ORDER_28 if order == 28 else ORDER_36
    return np.array([[int(c) for c in row] for row in rows], dtype=np.int8)


def _paley_search(n: int, limit: int) -> np.ndarray | None:
    c = 4 * (n // 4) + 4
    if n % 8 >= 4:
        q = c
        while q % 8 == 0:
            q //= 2
        if q - 1 in _PRIME_SET:
            base = paley(q - 1)
            return double(base, int(np.log2(c // q)))
    if n > _LARGEST_PRIME:
        return None
    p = next(p for p in _PRIMES if p >= n)
    if p + 1 > c + 4 and c + 4 < limit:
        return _paley_search(c + 3, 2 * (c + 3))
    if p > limit:
        return None
    return paley(p)


@lru_cache(maxsize=64)
def _hadamard(n: int) -> np.ndarray:
    c = 4 * (n // 4) + 4
    if c in _BASES:
        return _stored(c)
    best = None
    for base in _BASES:
        k = 0
        while base * 2**k < n + 1:
            k += 1
        size = base * 2**k
        if best is None or size < best[0]:
            best = (size, base, k)
    size, base, k = best
    if size - n > 4:
        found = _paley_search(n, size)
        if found is not None:
            return found
    return double(_stored(base), k)


def hadamard(n: int) -> np.ndarray:
    """0/1 Hadamard matrix with at least ``n + 1`` rows (R ``survey::hadamard``)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"hadamard needs a positive number of strata, got {n!r}")
    return _hadamard(int(n)).copy()
