"""Behaviour every result type shares: printing, the event-study plot, the inference label."""

from __future__ import annotations


def _field(name: str, doc: str | None = None):
    return property(lambda self: self._headline[name], doc=doc)


class ResultsBase:
    """Printing from a result's ``summary()``, and the read-only headline fields.

    ``att``, ``se``, ``t_stat``, ``p_value`` and ``conf_int`` (and their
    ``overall_*`` names) read the tidy row ``self._headline``; they cannot be
    assigned, while any other attribute can (clients attach provenance).
    """

    att = _field("estimate", "The headline treatment effect.")
    se = _field("se", "Standard error of ``att``.")
    t_stat = _field("t_stat")
    p_value = _field("p_value")
    conf_int = property(lambda self: (self._headline["conf_low"], self._headline["conf_high"]),
                        doc="Confidence interval of ``att``.")
    overall_att, overall_se, overall_t_stat = att, se, t_stat
    overall_p_value, overall_conf_int = p_value, conf_int

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def print_summary(self) -> None:
        print(self.summary())

    def _keep_inference_inputs(self, estimator, inference, metadata):
        """Store the settings, the inference (estimate + design) and the survey metadata."""
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.n_bootstrap = estimator.n_bootstrap
        self._inference = inference
        self.survey_metadata = metadata


class EventStudyResultsBase(ResultsBase):
    """Results with effects by event time: :meth:`plot_event_study` draws the tidy
    table ``_event_study_table()`` (``event_time``, ``estimate``, ``conf_low``,
    ``conf_high``; the ``event_study_effects`` property by default)."""

    def plot_event_study(self, ax=None, **kwargs):
        """Effects by event time with confidence intervals (matplotlib); returns the axis."""
        from ..plotting import plot_event_study

        return plot_event_study(self._event_study_table(), ax=ax, **kwargs)

    def _event_study_table(self):
        return self.event_study_effects

