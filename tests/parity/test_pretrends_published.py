"""Pre-trends power against published numbers (no fixture script: the inputs and results
are printed in the sources cited).

Source: the Stata port of R ``pretrends`` by Caceres Bravo and Roth,
github.com/mcaceresb/stata-pretrends (commit 13da58d): the cached example
``PreTrendsExampleBeta()`` / ``PreTrendsExampleSigma()`` in ``src/mata/pretrends.mata``
(He & Wang 2017, Figure 2C: a reghdfe event study with leads -4, -3, -2, reference -1;
only the 3 x 3 pre-period block of the covariance enters the power), and the results its
README prints:

* ``pretrends power 0.5``: ``r(slope) = .0520662478209672`` (the linear trend through
  the reference period that the "no individually significant lead" test detects half of
  the time);
* ``deltatrue = 0.024 * (t + 1)^2``: ``r(Power) = .6624492444726371``,
  ``r(Bayes) = .3841447004284795`` (P(pass | trend) / P(pass | no trend)).

The port integrates the box with Genz's Fortran MVTDST; we integrate deterministically.
Observed agreement ~5e-14; tolerance 1e-10.
"""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

SIGMA_PRE = np.array([[0.0089065712, 0.0044883136, 0.0014587025],
                      [0.0044883136, 0.0059369169, 0.0027500791],
                      [0.0014587025, 0.0027500791, 0.0030386248]])
BETA_PRE = [0.0667031482, -0.0077017923, -0.0307690538]
TOL = 1e-10


class HeAndWang:
    event_study_effects = pd.DataFrame({"event_time": [-4, -3, -2, -1],
                                        "estimate": BETA_PRE + [0.0]})
    event_study_vcov = pd.DataFrame(np.pad(SIGMA_PRE, ((0, 1), (0, 1))), index=[-4, -3, -2, -1],
                                    columns=[-4, -3, -2, -1])


def test_slope_for_half_power():
    res = dd.PreTrendsPower(power=0.5).fit(HeAndWang())
    assert res.mdv == pytest.approx(0.0520662478209672, abs=TOL)
    assert res.violation_weights.tolist() == [-3.0, -2.0, -1.0]


def test_power_and_bayes_factor_against_a_quadratic_trend():
    quad = dd.PreTrendsPower(violation_type="custom", violation_weights=[9, 4, 1])
    res = quad.fit(HeAndWang(), M=0.024)
    assert res.power == pytest.approx(0.6624492444726371, abs=TOL)
    null = quad.fit(HeAndWang(), M=0.0).power
    assert (1 - res.power) / (1 - null) == pytest.approx(0.3841447004284795, abs=TOL)
