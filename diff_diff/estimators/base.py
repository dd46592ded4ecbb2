"""Common estimator behaviour: parameters stored in ``__init__``, validated in ``fit``,
and the fit template every influence-function estimator runs."""

from __future__ import annotations

import functools
import inspect
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._frames import as_pandas
from ..inference import MULTIPLIERS
from ..survey.units import resolve_unit_design
from .panel import require_columns
from .registry import check_supported


@dataclass(frozen=True, eq=False)
class Sample:
    """The validated data of one fit and which rows of the input are its sampling units.

    ``arrays`` is the estimator's own (a unit panel, rows, ...); ``unit_rows``
    holds one row of the input frame per sampling unit, in the order of the
    estimator's influence values; ``unit`` is the column that groups rows into
    units (None: every row is one); ``columns`` are the column arguments.
    """

    arrays: Any
    unit_rows: np.ndarray
    unit: str | None
    columns: dict


class Estimator:
    """Base class: scikit-learn style parameters.

    Subclasses list their settings as ``__init__`` keyword arguments stored
    unchanged, and describe allowed values in ``_allowed`` (choices) and
    ``_checks`` (name -> (predicate, description)); :meth:`_validate`, called
    at the start of ``fit``, raises one kind of ``ValueError`` for any bad
    value.
    """

    _allowed: dict[str, tuple] = {}
    _checks: dict[str, tuple] = {}

    def __init_subclass__(cls, **kwargs):
        """Every estimator's ``fit`` takes a Polars/PyArrow/... frame as ``data``: converted
        to pandas once, before anything reads it (:func:`diff_diff._frames.as_pandas`)."""
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is None or getattr(fit, "_converts_frames", False):
            return

        @functools.wraps(fit)
        def converting_fit(self, *args, **kwargs):
            if args:
                args = (as_pandas(args[0]), *args[1:])
            elif "data" in kwargs:
                kwargs["data"] = as_pandas(kwargs["data"])
            return fit(self, *args, **kwargs)

        converting_fit._converts_frames = True
        cls.fit = converting_fit

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def _store(self, arguments: dict) -> None:
        """Store the constructor's arguments unchanged (``self._store(locals())``)."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor settings as a dict (scikit-learn style).

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility; settings are never nested.

        Returns
        -------
        dict
            Setting name -> value, one entry per constructor parameter.

        Examples
        --------
        >>> from diff_diff import CallawaySantAnna
        >>> CallawaySantAnna(alpha=0.1).get_params()["alpha"]
        0.1
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Estimator":
        """Change settings (validated at the next ``fit``).

        Parameters
        ----------
        **params
            Constructor settings to change, by name.

        Returns
        -------
        Estimator
            ``self``, so that calls chain.

        Raises
        ------
        ValueError
            If a name is not a constructor parameter of this estimator.

        Examples
        --------
        >>> from diff_diff import CallawaySantAnna
        >>> CallawaySantAnna().set_params(alpha=0.1).alpha
        0.1
        """
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {valid}"
                )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _validate(self) -> None:
        name, params = type(self).__name__, self._param_names()
        for param, choices in self._allowed.items():
            if param not in params:  # a shared setting this estimator does not have
                continue
            value = getattr(self, param)
            if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
                raise ValueError(f"{name}: {param} must be one of {list(choices)}, got {value!r}")
        for param, (check, description) in self._checks.items():
            if param not in params:
                continue
            value = getattr(self, param)
            if not check(value):
                raise ValueError(f"{name}: {param} must be {description}, got {value!r}")

    def _fit(self, data, survey_design, columns: dict, **options):
        """The fit template: validate -> sample -> design -> estimate -> inference -> results.

        Subclasses implement three steps: ``_sample(data, columns, **options) ->
        Sample`` (read and check the columns), ``_estimate(sample, design) ->
        fitted`` (an object whose ``estimate`` is an
        :class:`~diff_diff.inference.Estimate`) and ``_results(fitted,
        inference, metadata)`` (by default ``_results_class.from_fit``).
        Everything about survey designs, clusters, replicate weights and the
        bootstrap happens here and in the engine.
        """
        self._validate()
        check_supported(self, survey_design)
        require_columns(data, cluster=self.cluster, **columns)
        sample = self._sample(data, columns, **options)
        design, metadata = resolve_unit_design(data, survey_design, sample.unit,
                                               sample.unit_rows, self.cluster,
                                               type(self).__name__)
        fitted = self._estimate(sample, design)
        results = self._results(fitted, self._inference(fitted.estimate, design), metadata)
        results._warn_if_not_identified()
        return results

    def _results(self, fitted, inference, metadata):
        """The results object (``_results_class.from_fit``)."""
        return self._results_class.from_fit(self, fitted, inference, metadata)

    def _inference(self, estimate, design):
        """The inference of ``estimate`` under ``design`` with this estimator's settings."""
        from ..inference.estimate import Inference

        return Inference(estimate, design, n_bootstrap=self.n_bootstrap,
                         bootstrap_weights=self.bootstrap_weights or "rademacher", seed=self.seed,
                         alpha=self.alpha, cband=bool(self.cband and self.n_bootstrap),
                         cluster=self.cluster)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def is_int(value, low: int = 0) -> bool:
    return (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low
    )


def is_prob(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < 1


def is_seed(value) -> bool:
    import numpy as np

    return value is None or is_int(value) or isinstance(value, np.random.Generator)


def _column_or_none(value) -> bool:
    return value is None or isinstance(value, str)


def _draw_count(value) -> bool:
    return is_int(value, 0) and value != 1


# One vocabulary for inference settings, shared by every estimator family and merged into
# their tables: alpha, cluster, n_bootstrap, bootstrap_weights (None: rademacher, the 3.x
# default spelling), seed; influence-function estimators add cband and, where 3.x had it,
# vcov_type="hc1" (their variance is the design's; no other type applies).
INFERENCE_ALLOWED = {
    "bootstrap_weights": MULTIPLIERS + (None,),
    "cband": (True, False),
    "vcov_type": ("hc1",),
}
INFERENCE_CHECKS = {
    "alpha": (is_prob, "in (0, 1)"),
    "cluster": (_column_or_none, "None or a column name"),
    "n_bootstrap": (_draw_count, "0 or an integer >= 2"),
    "seed": (is_seed, "None, an integer or a numpy Generator"),
}
