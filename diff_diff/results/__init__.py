"""Result types, tidy tables and the one summary formatter."""

from .callaway_santanna import AggregationResults, CallawaySantAnnaResults
from .table import TIDY_COLUMNS, format_summary, tidy
from .triple_staggered import StaggeredTripleDiffResults

__all__ = ["AggregationResults", "CallawaySantAnnaResults", "StaggeredTripleDiffResults",
           "TIDY_COLUMNS", "format_summary", "tidy"]
