"""Weighted least squares with absorbed fixed effects, and boundary local polynomials."""
