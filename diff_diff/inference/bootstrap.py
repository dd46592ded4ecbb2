"""Multiplier bootstrap drawn per PSU within strata.

Each bootstrap draw perturbs the stratum-centred PSU totals of the influence
values with independent mean-zero, unit-variance multipliers::

    delta_b = sum_h sum_j v_bhj * sqrt(s_h) * (z_hj - zbar_h)

where ``s_h`` is the Taylor-linearization multiplier of stratum h (FPC,
``n_h/(n_h-1)`` and the lonely-PSU rule). Hence ``E[delta delta']`` equals the
Taylor-linearization variance exactly, and without strata or PSUs the draws
reduce to the usual unit-level multiplier bootstrap (Kline & Santos 2012;
Callaway & Sant'Anna 2021, with the ``n/(n-1)`` correction).
"""

from __future__ import annotations

import numpy as np

from .tsl import centred_psu_totals, lonely_inflation, psu_totals, stratum_weights

MULTIPLIERS = ("rademacher", "mammen", "webb")
# Elements of one block of draws, to bound memory when PSUs are many.
_BLOCK_ELEMENTS = 4_000_000

_SQRT5 = np.sqrt(5.0)
_MAMMEN_LOW = -(_SQRT5 - 1.0) / 2.0
_MAMMEN_HIGH = (_SQRT5 + 1.0) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)
_WEBB_VALUES = np.array(
    [-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)]
)


def draw_multipliers(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    """Mean-zero, unit-variance multipliers of the named distribution.

    ``rademacher``: +-1 with probability 1/2. ``mammen``: -(sqrt5-1)/2 with
    probability (sqrt5+1)/(2 sqrt5), else (sqrt5+1)/2 (third moment 1).
    ``webb``: the six points +-sqrt(1/2), +-1, +-sqrt(3/2), each 1/6.
    """
    if kind == "rademacher":
        size = int(np.prod(shape))
        bits = np.unpackbits(rng.integers(0, 256, size=(size + 7) // 8, dtype=np.uint8))
        return (bits[:size].reshape(shape) * 2.0) - 1.0
    if kind == "mammen":
        low = rng.random(shape) < _MAMMEN_P_LOW
        return np.where(low, _MAMMEN_LOW, _MAMMEN_HIGH)
    if kind == "webb":
        return _WEBB_VALUES[rng.integers(0, 6, size=shape)]
    raise ValueError(f"bootstrap multipliers must be one of {list(MULTIPLIERS)}, got {kind!r}")


def scaled_psu_deviations(psi: np.ndarray, design) -> np.ndarray:
    """``sqrt(s_h) (z_hj - zbar_h)`` for every PSU (n_psu x k): what the draws perturb."""
    psi = np.asarray(psi, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if design.calibration is not None:
        psi = design.calibration.residualize(psi)
    if design.n_psu == psi.shape[0] and not design.has_psu:
        totals = psi  # each row is its own PSU, in row order
    else:
        totals = psu_totals(psi, design.psu, design.n_psu)
    scale, centred, lonely = stratum_weights(
        design.stratum_n_psu, design.stratum_fpc, design.lonely_psu
    )
    inflation = lonely_inflation(np.ones(lonely.shape, bool), lonely, design.lonely_psu)
    dev = centred_psu_totals(
        totals, design.psu_stratum, design.stratum_n_psu, centred, design.psu_multiplicity
    )
    c = scale[design.psu_stratum] * inflation
    if design.psu_multiplicity is not None:
        c = c * design.psu_multiplicity
    dev *= np.sqrt(c)[:, None]
    return dev


def multiplier_bootstrap(
    psi: np.ndarray,
    design,
    n_draws: int = 999,
    multiplier: str = "rademacher",
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Bootstrap deviations ``theta*_b - theta_hat`` (n_draws x k).

    Deterministic given ``seed``: one ``numpy.random.Generator`` draws the
    multipliers in blocks of PSUs (all draws for a block at once), whose size
    depends only on ``n_draws``, so memory stays bounded however many PSUs
    there are.
    """
    if multiplier not in MULTIPLIERS:
        raise ValueError(
            f"bootstrap multipliers must be one of {list(MULTIPLIERS)}, got {multiplier!r}"
        )
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
        raise ValueError(f"n_draws must be an integer >= 2, got {n_draws!r}")
    n_draws = int(n_draws)
    rng = np.random.default_rng(seed)
    dev = scaled_psu_deviations(psi, design)
    n_psu, k = dev.shape
    out = np.zeros((n_draws, k))
    block = max(1, _BLOCK_ELEMENTS // n_draws)
    for start in range(0, n_psu, block):
        stop = min(start + block, n_psu)
        v = draw_multipliers(rng, (n_draws, stop - start), multiplier)
        out += v @ dev[start:stop]
    return out
