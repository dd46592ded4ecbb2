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
* ``matlist r(results)`` at that slope: ``meanAfterPretesting`` (printed to 7 decimals) for
  event times -4, -3, -2, 0, 1, 2, 3 = -.0923171, -.0555576, -.0279117, .0649147, .1208691,
  .1694932, .2245753 (the later periods need the full 7 x 7 covariance, also in the .mata
  file);
* ``deltatrue = 0.024 * (t + 1)^2``: ``r(Power) = .6624492444726371``,
  ``r(Bayes) = .3841447004284795`` (P(pass | trend) / P(pass | no trend)).

The port integrates the box with Genz's Fortran MVTDST; we integrate deterministically.
Observed agreement ~5e-14; tolerance 1e-10 (5e-8 for the 7-decimal table).
"""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

SIGMA = np.array([
    [0.0089065712, 0.0044883136, 0.0014587025, 0.0012157689, 0.0020327645, 0.0013225015,
     0.0019617728],
    [0.0044883136, 0.0059369169, 0.0027500791, 0.0013505858, 0.0014315459, 0.0012067792,
     0.0013847158],
    [0.0014587025, 0.0027500791, 0.0030386248, 0.0009056166, 0.0006791299, 0.0010167636,
     0.0007090144],
    [0.0012157689, 0.0013505858, 0.0009056166, 0.0039247409, 0.002596118, 0.0017326149,
     0.0022345525],
    [0.0020327645, 0.0014315459, 0.0006791299, 0.002596118, 0.008065897, 0.0058753751,
     0.0037414359],
    [0.0013225015, 0.0012067792, 0.0010167636, 0.0017326149, 0.0058753751, 0.007881579,
     0.0036507095],
    [0.0019617728, 0.0013847158, 0.0007090144, 0.0022345525, 0.0037414359, 0.0036507095,
     0.0097884266]])
BETA = [0.0667031482, -0.0077017923, -0.0307690538, 0.084030658, 0.2424418181, 0.2198789865,
        0.1910925359]
EVENTS = [-4, -3, -2, -1, 0, 1, 2, 3]  # -1: the omitted reference period
TOL = 1e-10


class HeAndWang:
    event_study_effects = pd.DataFrame({"event_time": EVENTS,
                                        "estimate": BETA[:3] + [0.0] + BETA[3:]})
    event_study_vcov = pd.DataFrame(np.insert(np.insert(SIGMA, 3, 0.0, axis=0), 3, 0.0, axis=1),
                                    index=EVENTS, columns=EVENTS)


def test_slope_for_half_power():
    res = dd.PreTrendsPower(power=0.5).fit(HeAndWang())
    assert res.mdv == pytest.approx(0.0520662478209672, abs=TOL)
    assert res.violation_weights.tolist() == [-3.0, -2.0, -1.0]


def test_power_and_bayes_factor_against_a_quadratic_trend():
    quad = dd.PreTrendsPower(violation_type="custom", violation_weights=[9, 4, 1])
    res = quad.fit(HeAndWang(), M=0.024)
    assert res.power == pytest.approx(0.6624492444726371, abs=TOL)
    assert res.bayes_factor == pytest.approx(0.3841447004284795, abs=TOL)


def test_means_after_pretesting_table():
    res = dd.PreTrendsPower(power=0.5).fit(HeAndWang())
    table = res.means_after_pretesting()
    assert table["event_time"].tolist() == [-4, -3, -2, 0, 1, 2, 3]
    np.testing.assert_allclose(table["violation"], 0.0520662478209672 * (table["event_time"] + 1),
                               rtol=1e-9)
    np.testing.assert_allclose(table["mean_after_pretesting"],
                               [-.0923171, -.0555576, -.0279117, .0649147, .1208691, .1694932,
                                .2245753], rtol=0, atol=5e-8)
