"""Behaviour every result type shares: printing, the event-study plot, the inference label."""

from __future__ import annotations


class ResultsBase:
    """Printing from a result's ``summary()``."""

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def print_summary(self) -> None:
        print(self.summary())


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


def inference_label(design, survey: bool, n_bootstrap: int) -> str:
    """How standard errors were obtained, for summaries."""
    if design.replicate is not None:
        return f"replicate weights ({design.replicate.method}), estimator refitted"
    base = "survey design (Taylor linearization)" if survey else "influence functions"
    if n_bootstrap:
        base += f", multiplier bootstrap ({n_bootstrap} draws)"
    return base
