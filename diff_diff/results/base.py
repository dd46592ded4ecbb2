"""The results core every result type shares.

A result holds primitives (estimates, their inference, metadata) and says
three things about itself: ``_headline`` (the tidy row of the headline
effect), ``_info()`` (key-value lines for the summary) and ``_tables()``
(named tidy tables). Everything users see is derived here from those: the
read-only headline fields, ``summary()``/``str()``, the notebook table
(``_repr_html_``), ``to_dataframe(level=)``, ``to_dict()`` and ``plot()``.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .._warnings import warn_user
from .table import TIDY_COLUMNS, format_summary, significance_stars


def _field(name: str, doc: str | None = None):
    return property(lambda self: self._headline[name], doc=doc)


class ResultsBase:
    """Shared behaviour of results; headline fields are read-only.

    ``att``, ``se``, ``t_stat``, ``p_value`` and ``conf_int`` (and their
    ``overall_*`` names) read the tidy row ``self._headline``; they cannot be
    assigned, while any other attribute can (clients attach provenance).

    Standard errors follow one convention: a variance that is not identified
    (negative or missing) gives a NaN standard error, and then t, p and the
    interval are NaN together.
    """

    _title = "Difference-in-differences"
    _headline_term = "ATT"
    # to_dataframe levels: level -> method name returning the table; the first is the default
    _levels: dict = {"overall": "_overall_table"}
    # levels whose tables are not in the tidy schema (e.g. one row per observation)
    _raw_levels: tuple = ()

    att = _field("estimate", "The headline treatment effect.")
    se = _field("se", "Standard error of ``att``.")
    t_stat = _field("t_stat", "t statistic of ``att``.")
    p_value = _field("p_value", "Two-sided p-value of ``att``.")
    conf_int = property(lambda self: (self._headline["conf_low"], self._headline["conf_high"]),
                        doc="Confidence interval of ``att``.")
    overall_att, overall_se, overall_t_stat = att, se, t_stat
    overall_p_value, overall_conf_int = p_value, conf_int

    @property
    def is_significant(self) -> bool:
        """Whether ``p_value < alpha``."""
        return bool(self.p_value < self.alpha)

    @property
    def significance_stars(self) -> str:
        """``***`` (p < 0.001), ``**`` (0.01), ``*`` (0.05), ``.`` (0.1) or empty."""
        return significance_stars(self.p_value)

    @property
    def coef_var(self) -> float:
        """Coefficient of variation of the headline estimate, ``se / |att|``."""
        return float(self.se / abs(self.att)) if self.att != 0 else float("nan")

    # ------------------------------------------------------------- tables
    @property
    def levels(self) -> tuple:
        """The levels :meth:`to_dataframe` accepts (the first is the default)."""
        return tuple(self._levels)

    def to_dataframe(self, level: str | None = None) -> pd.DataFrame:
        """A tidy table of the results at ``level`` (see :attr:`levels`).

        Parameters
        ----------
        level : str, optional
            One of :attr:`levels`; default the first (``"dynamic"`` is read as
            ``"event_study"``).

        Returns
        -------
        DataFrame
            Columns ``term``, ``estimate``, ``se``, ``t_stat``, ``p_value``, ``conf_low``,
            ``conf_high`` (and level-specific keys such as ``event_time``).

        Raises
        ------
        ValueError
            If ``level`` is not one of :attr:`levels`.
        """
        if level is None:
            level = next(iter(self._levels))
        level = {"dynamic": "event_study"}.get(level, level)
        if level not in self._levels:
            raise ValueError(f"level must be one of {list(self._levels)}, got {level!r}")
        return getattr(self, self._levels[level])().copy()

    def _overall_table(self) -> pd.DataFrame:
        row = {k: self._headline[k] for k in TIDY_COLUMNS}
        return pd.DataFrame([{"term": self._headline_term, **row}])

    def to_dict(self) -> dict:
        """The headline numbers, how they were obtained and the estimator's settings
        (under ``"params"``)."""
        lo, hi = self.conf_int
        out = {"result": type(self).__name__, "att": self.att,
               "se": self.se, "t_stat": self.t_stat, "p_value": self.p_value,
               "conf_int_lower": lo, "conf_int_upper": hi, "alpha": self.alpha,
               "n_obs": getattr(self, "n_obs", None), "df": getattr(self, "df", None)}
        if getattr(self, "_inference", None) is not None:
            out["inference"] = self._inference.label
        out["params"] = dict(getattr(self, "estimator_params", {}))
        return out

    # ----------------------------------------------------------- printing
    def _info(self) -> list:
        return []

    def _tables(self) -> list:
        return [("Average treatment effect on the treated", self._overall_table(), ["term"])]

    def _all_info(self) -> list:
        info = self._info()
        if getattr(self, "_inference", None) is not None:
            info = info + [("Inference", self._inference.label)]
        return info

    def summary(self) -> str:
        """A text summary: settings, the headline effect, the main tables and the design."""
        return format_summary(self._title, self._all_info(), self._tables(),
                              getattr(self, "survey_metadata", None), self.alpha)

    def print_summary(self) -> None:
        """Print :meth:`summary` (diff-diff 3.x)."""
        print(self.summary())

    def __str__(self) -> str:
        return self.summary()

    def _repr_fields(self) -> dict:
        return {"n_obs": getattr(self, "n_obs", None)}

    def __repr__(self) -> str:
        fields = {"att": f"{self.att:.6g}", "se": f"{self.se:.6g}",
                  **{k: v for k, v in self._repr_fields().items() if v is not None}}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in fields.items())})"

    def _repr_html_(self) -> str:
        """The summary's tables as HTML (notebooks)."""
        parts = [f"<h4>{html.escape(self._title)}</h4>"]
        info = self._all_info()
        if info:
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                           for k, v in info)
            parts.append(f"<table>{rows}</table>")
        for name, table, label_cols in self._tables():
            cols = label_cols + list(TIDY_COLUMNS)
            parts.append(f"<p><b>{html.escape(name)}</b></p>")
            parts.append(table[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                             na_rep="NaN"))
        return "\n".join(parts)

    # ------------------------------------------------------------ figures
    def plot(self, ax=None, **kwargs):
        """The estimates with confidence intervals (matplotlib); returns the axis.

        Event-study results draw effects by event time; others the headline
        effect and their main table's estimates.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to the plotting function.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_estimates

        name, table, label_cols = self._tables()[-1]
        return plot_estimates(table, label_cols[0], ax=ax, title=name, **kwargs)

    def _warn_if_not_identified(self) -> None:
        """Never a NaN headline without a word: say which part is not identified."""
        name = getattr(self, "_estimator", None) or type(self).__name__.removesuffix("Results")
        if not np.isfinite(self.att):
            warn_user(f"{name}: the headline effect ({self._headline_term}) is NaN: no "
                      "estimate entering it could be computed (see the warnings above and "
                      "the result's tables)")
        elif not np.isfinite(self.se):
            warn_user(f"{name}: the standard error of the headline effect is NaN: its "
                      "variance is not identified under this design (see the warnings above)")

    # -------------------------------------------------------------- setup
    @classmethod
    def from_fit(cls, estimator, fitted, inference, metadata):
        """The results of one fit: ``fitted`` is what the estimator's ``_estimate`` returned.

        Used by the estimators' ``fit``; not needed in user code.

        Parameters
        ----------
        estimator
            The fitted estimator (its settings are recorded).
        fitted
            What the estimator's ``_estimate`` returned.
        inference
            The variance engine's ``Inference`` of the estimates.
        metadata : SurveyMetadata or None
            The design summary.

        Returns
        -------
        ResultsBase
        """
        self = cls.__new__(cls)
        self._keep_inference_inputs(estimator, inference, metadata)
        self._setup(estimator, fitted)
        return self

    def _setup(self, estimator, fitted) -> None:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def _keep_inference_inputs(self, estimator, inference, metadata):
        """Store the settings, the inference (estimate + design) and the survey metadata."""
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.n_bootstrap = estimator.n_bootstrap
        self._inference = inference
        self.survey_metadata = metadata


class EventStudyResultsBase(ResultsBase):
    """Results with effects by event time: :meth:`plot_event_study` (and :meth:`plot`)
    draw the tidy table ``_event_study_table()`` (``event_time``, ``estimate``,
    ``conf_low``, ``conf_high``; the ``event_study_effects`` property by default)."""

    def plot_event_study(self, ax=None, **kwargs):
        """Effects by event time with confidence intervals (matplotlib); returns the axis.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to ``plot_event_study`` (``label``, ``color``, ``band``, ``title``, ...).

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_event_study

        return plot_event_study(self._event_study_table(), ax=ax, **kwargs)

    plot = plot_event_study

    def _event_study_table(self):
        return self.event_study_effects
