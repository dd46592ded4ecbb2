"""One tidy schema and one text formatter for every result in the library."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import t_inference

TIDY_COLUMNS = ("estimate", "se", "t_stat", "p_value", "conf_low", "conf_high")


def tidy(
    labels: dict[str, np.ndarray],
    estimate: np.ndarray,
    se: np.ndarray,
    df,
    alpha: float,
    band_crit: float | None = None,
) -> pd.DataFrame:
    """A tidy table: label columns, then estimate, se, t_stat, p_value, conf_low, conf_high.

    With ``band_crit`` (a sup-t critical value), ``cband_low``/``cband_high``
    give the uniform band ``estimate +- band_crit * se``.
    """
    estimate = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    t, p, lo, hi = t_inference(estimate, se, df, alpha)
    out = pd.DataFrame({k: np.asarray(v) for k, v in labels.items()})
    out["estimate"] = estimate
    out["se"] = se
    out["t_stat"] = t
    out["p_value"] = p
    out["conf_low"] = lo
    out["conf_high"] = hi
    if band_crit is not None:
        ok = np.isfinite(lo)
        out["cband_low"] = np.where(ok, estimate - band_crit * se, np.nan)
        out["cband_high"] = np.where(ok, estimate + band_crit * se, np.nan)
    return out


class EffectsTable(pd.DataFrame):
    """A tidy table of effects by event time (or group) that diff-diff 3.x code can also
    read the old way: ``table[e]`` for a label ``e`` that is not a column gives
    ``{"effect", "se", "t_stat", "p_value", "conf_int", ...}`` of that row, ``e in table``
    is true for such labels, and ``if table:`` tests for rows. Everything else is a
    DataFrame (``items()`` iterates columns, as pandas does; iterate the old way with
    ``for e in table[label]: table[e]``). The label survives copies and row selections,
    not ``concat`` or ``merge``."""

    _metadata = ["_label_column"]

    @property
    def _constructor(self):
        return EffectsTable

    def _is_label(self, key) -> bool:
        label = getattr(self, "_label_column", None)
        return (label is not None and label in self.columns and np.isscalar(key)
                and not isinstance(key, (str, bool, np.bool_)) and key not in self.columns)

    def __getitem__(self, key):
        if self._is_label(key):
            label = self._label_column
            rows = self.loc[self[label] == key]
            if len(rows) != 1:
                raise KeyError(f"{key!r} is neither a column nor a value of {label!r}")
            row = rows.iloc[0]
            names = {"effect": "estimate", "se": "se", "t_stat": "t_stat", "p_value": "p_value",
                     "n_obs": "n_obs", "n_groups": "n_groups"}
            out = {old: _plain(row[new]) for old, new in names.items() if new in row.index}
            if {"conf_low", "conf_high"} <= set(row.index):
                out["conf_int"] = (_plain(row["conf_low"]), _plain(row["conf_high"]))
            if {"cband_low", "cband_high"} <= set(row.index):
                out["cband_conf_int"] = (_plain(row["cband_low"]), _plain(row["cband_high"]))
            return out
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        if self._is_label(key):
            return bool((self[self._label_column] == key).any())
        return super().__contains__(key)

    def __bool__(self) -> bool:
        return len(self) > 0


def _plain(value):
    """A Python number for 3.x-style dicts."""
    if isinstance(value, (np.integer, int)):
        return int(value)
    return float(value)


def with_wild(row: dict, wild) -> dict:
    """``row`` with the p-value and interval of the wild cluster bootstrap, when there is
    one (``wild``: its result dict, or None)."""
    if wild is None:
        return row
    return dict(row, p_value=wild["p_value"], conf_low=wild["conf_int"][0],
                conf_high=wild["conf_int"][1])


def effects_table(table: pd.DataFrame, label_column: str) -> EffectsTable:
    """``table`` as an :class:`EffectsTable` keyed by ``label_column``."""
    out = EffectsTable(table)
    out._label_column = label_column
    return out


def integer_labels(values) -> np.ndarray:
    """Periods, cohorts and event times as integers when they are whole numbers."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return values.astype(np.int64)
    return values


def significance_stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "NaN"
        return f"{value:.4f}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"
    return str(value)


def format_summary(
    title: str,
    info: list[tuple[str, object]],
    tables: list[tuple[str, pd.DataFrame, list[str]]],
    metadata=None,
    alpha: float = 0.05,
) -> str:
    """Text summary: a title, key-value lines, tables and the survey design block."""
    width = 78
    lines = ["=" * width, title.center(width), "=" * width]
    key_width = max([32] + [len(key) + 2 for key, _ in info])
    kw = key_width
    for key, value in info:
        lines.append(f"{key + ':':<{kw}}{_fmt(value)}")
    if metadata is not None:
        lines += ["", "Survey design".center(width), "-" * width]
        lines += [f"{key + ':':<{kw}}{_fmt(value)}" for key, value in metadata.summary_items()]
    level = f"{100 * (1 - alpha):g}%"
    for name, table, label_cols in tables:
        lines += ["", name.center(width), "-" * width]
        cols = label_cols + ["estimate", "se", "t_stat", "p_value", "conf_low", "conf_high"]
        head = [c if c not in ("conf_low", "conf_high") else f"{level} {c[5:]}" for c in cols]
        rows = [[_fmt(v) for v in row] for row in table[cols].itertuples(index=False)]
        for row, p in zip(rows, table["p_value"]):
            row.append(significance_stars(p))
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        lines.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for row in rows:
            lines.append("  ".join(v.rjust(w) for v, w in zip(row, widths)) + " " + row[-1])
    lines += ["-" * width, "Signif. codes: '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1", "=" * width]
    return "\n".join(lines)
