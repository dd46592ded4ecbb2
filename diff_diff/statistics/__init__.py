"""Design-based statistics from survey microdata: means and totals by domain
(R ``svymean``/``svytotal``/``svyby``) and the collapse to a panel (:func:`aggregate_survey`)."""

from .aggregate import aggregate_survey
from .descriptive import survey_mean, survey_total

__all__ = ["aggregate_survey", "survey_mean", "survey_total"]
