"""Diagnostics: pre-tests that consume data or results, never estimators' internals."""

from .had_pretests import qug_test, stute_test, yatchew_test

__all__ = ["qug_test", "stute_test", "yatchew_test"]
