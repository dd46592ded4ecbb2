"""Property tests (hypothesis) of design-based means and the engine."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from diff_diff import SurveyDesign, survey_mean, survey_total
from diff_diff.inference import cluster_variance, design_variance


@st.composite
def survey_frames(draw):
    n_strata = draw(st.integers(1, 4))
    psu_per = draw(st.integers(2, 4))
    rows_per = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_psu = n_strata * psu_per
    psu = np.repeat(np.arange(n_psu), rows_per)
    n = psu.size
    return pd.DataFrame(
        {
            "st": psu // psu_per,
            "p": psu,
            "w": rng.uniform(0.2, 5.0, n),
            "y": rng.normal(size=n) * 3 + 1,
            "dom": rng.integers(0, 2, n),
        }
    )


DESIGNS = st.sampled_from(
    [
        dict(weights="w"),
        dict(weights="w", psu="p"),
        dict(weights="w", strata="st"),
        dict(weights="w", strata="st", psu="p"),
        dict(weights="w", strata="st", psu="p", lonely_psu="adjust"),
    ]
)


@settings(max_examples=60, deadline=None)
@given(survey_frames(), DESIGNS, st.floats(1e-3, 1e3))
def test_mean_and_se_invariant_to_weight_scale(df, kwargs, factor):
    design = SurveyDesign(**kwargs)
    a = survey_mean(df, "y", design, by="dom")
    b = survey_mean(df.assign(w=df["w"] * factor), "y", design, by="dom")
    np.testing.assert_allclose(b[["estimate", "se"]], a[["estimate", "se"]], rtol=1e-9, atol=1e-12)
    ta = survey_total(df, "y", design)
    tb = survey_total(df.assign(w=df["w"] * factor), "y", design)
    np.testing.assert_allclose(tb[["estimate", "se"]], ta[["estimate", "se"]] * factor, rtol=1e-9, atol=1e-12 * factor)


@settings(max_examples=60, deadline=None)
@given(survey_frames())
def test_psu_without_strata_equals_cr1(df):
    design = SurveyDesign(weights="w", psu="p").resolve(df)
    w, y = design.weights, df["y"].to_numpy()
    psi = (w * (y - np.average(y, weights=w)) / w.sum())[:, None]
    tsl = design_variance(psi, design)
    groups = df["p"].to_numpy()
    totals = np.array([psi[groups == g].sum() for g in np.unique(groups)])
    g = totals.size
    cr1 = g / (g - 1) * np.sum(totals**2)  # sandwich-style, uncentred
    np.testing.assert_allclose(tsl.vcov[0, 0], cr1, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(cluster_variance(psi, groups).vcov, tsl.vcov, rtol=1e-12)
    assert tsl.df == g - 1


@settings(max_examples=60, deadline=None)
@given(survey_frames(), DESIGNS, st.floats(0.01, 100))
def test_uniform_weights_equal_unweighted(df, kwargs, constant):
    weighted = survey_mean(df.assign(w=constant), "y", SurveyDesign(**kwargs), by="dom")
    unweighted = survey_mean(df, "y", SurveyDesign(**{**kwargs, "weights": None}), by="dom")
    np.testing.assert_allclose(
        weighted[["estimate", "se", "df"]], unweighted[["estimate", "se", "df"]], rtol=1e-9, atol=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(survey_frames(), DESIGNS, st.integers(0, 2**31 - 1))
def test_row_order_does_not_matter_and_input_untouched(df, kwargs, seed):
    before = df.copy()
    design = SurveyDesign(**kwargs)
    a = survey_mean(df, "y", design, by="dom", deff=True)
    pd.testing.assert_frame_equal(df, before)
    shuffled = df.sample(frac=1.0, random_state=seed % (2**32 - 1))
    b = survey_mean(shuffled, "y", design, by="dom", deff=True)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    design.resolve(df)
    design.subpopulation(df, df["dom"] == 1) if (df["dom"] == 1).any() else None
    pd.testing.assert_frame_equal(df, before)
