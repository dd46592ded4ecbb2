"""Result types, tidy tables and the one summary formatter."""

from .callaway_santanna import AggregationResults, CallawaySantAnnaResults
from .table import TIDY_COLUMNS, format_summary, tidy

__all__ = ["AggregationResults", "CallawaySantAnnaResults", "TIDY_COLUMNS", "format_summary", "tidy"]
