#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference fixtures: regression difference-in-differences estimators
## (DifferenceInDifferences, MultiPeriodDiD, TwoWayFixedEffects) from R's
## estimatr, sandwich, clubSandwich and survey packages.
##
## Run from the repository root:
##     Rscript tests/parity/r/regression.R
## Output:
##     tests/parity/fixtures/regression.json
##
## The script simulates three small data sets (deterministic, set.seed):
##   did_cs       ~400 rows, 2x2 DiD (treat, post), covariates x1, x2,
##                weights w, 30 unequal clusters cl, and a survey design
##                (7 strata, 26 PSUs, fpc) with exported replicate weights;
##   twfe_panel   40 units x 6 periods, half treated from period 4;
##   event_panel  50 units x 6 periods, half ever treated, treatment from 4.
## and records for every case the estimate, SE, df and p-value of the
## treatment coefficient (plus period effects and their post-period average
## for MultiPeriodDiD), n_obs and R^2:
##   * classical / HC1 / HC2 / HC3 / CR1: estimatr::lm_robust, cross-checked
##     against lm + sandwich::vcovHC / vcovCL;
##   * hc2_bm: clubSandwich::vcovCR(type = "CR2") with coef_test (and, for
##     the MultiPeriodDiD average, Wald_test with a one-row constraint,
##     test = "HTZ"; Satterthwaite df), cross-checked against linear_contrast
##     where it works and against an explicit implementation (cr2_manual);
##   * survey: survey::svyglm on svydesign (Taylor) and on svrepdesign
##     rebuilt from exported combined analysis weights (JK1, JKn, BRR, Fay,
##     bootstrap), cross-checked against the as.svrepdesign() objects.
## See tests/parity/r/README.md for the JSON layout.
## ---------------------------------------------------------------------------

if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")
suppressPackageStartupMessages({
  library(estimatr)
  library(sandwich)
  library(lmtest)
  library(clubSandwich)
})

script_path <- "tests/parity/r/regression.R"
out_path <- "tests/parity/fixtures/regression.json"

set.seed(20241003)

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

rel_diff <- function(a, b) max(abs(a - b) / pmax(abs(b), 1e-300))

## Largest relative differences seen in the cross-checks (reported in notes).
checks <- new.env()
checks$estimatr_vs_sandwich <- 0
checks$clubsandwich_vs_manual_se <- 0
checks$clubsandwich_vs_manual_df <- 0
checks$contrast_vs_coef_test <- 0
checks$replicate_vs_asrep <- 0
checks$wald_htz_vs_t <- 0
checks$wald_htz_vs_linear_contrast <- 0
checks$linear_contrast_fails_weighted <- TRUE
note_check <- function(name, value, tol, id) {
  if (!is.finite(value) || value > tol) {
    stop(sprintf("Cross-check %s failed in %s: rel diff %.3g > %.3g", name, id, value, tol))
  }
  checks[[name]] <- max(checks[[name]], value)
}

## Summary block for one coefficient or contrast.
stat_block <- function(estimate, se, df, p_value) {
  list(estimate = unname(as.numeric(estimate)), se = unname(as.numeric(se)),
       df = if (is.null(df)) NULL else unname(as.numeric(df)),
       p_value = unname(as.numeric(p_value)))
}
t_pvalue <- function(est, se, df) 2 * pt(-abs(est / se), df)

## Fit lm / lm_robust with optional weights and clusters given as column names
## (both functions evaluate these arguments non-standardly).
fit_lm <- function(fml, data, wcol) {
  cl <- bquote(lm(.(fml), data = data))
  if (!is.null(wcol)) cl$weights <- as.name(wcol)
  eval(cl)
}
fit_lmr <- function(fml, data, wcol, ccol, se_type) {
  cl <- bquote(lm_robust(.(fml), data = data, se_type = .(se_type)))
  if (!is.null(wcol)) cl$weights <- as.name(wcol)
  if (!is.null(ccol)) cl$clusters <- as.name(ccol)
  eval(cl)
}

## Explicit CR2 + Satterthwaite (Bell-McCaffrey / Pustejovsky-Tipton) as
## clubSandwich 0.5.8 computes them for an lm with analytic weights w:
##   M = (X'WX)^-1, H = X M X'W (not symmetric when weighted),
##   working covariance Theta = I (weights do NOT enter it),
##   Omega = (I - H) Theta (I - H)',  A_j = (Omega_jj)^(-1/2)  (symmetric root),
##   V = M [sum_j X_j'W_j A_j e_j e_j' A_j W_j X_j] M,  e = y - X b (raw residuals).
## For a contrast c: g_j = (rows of cluster j) A_j W_j X_j M c, zero elsewhere;
##   c'Vc = sum_j (g_j'e)^2;  P = [g_j' Omega g_k]_{jk};
##   df = tr(P)^2 / sum(P^2).
## Returns the CR2 vcov and a function giving the Satterthwaite df of c.
cr2_manual <- function(X, y, w, cluster) {
  n <- nrow(X)
  if (is.null(w)) w <- rep(1, n)
  M <- solve(crossprod(X, X * w))
  b <- M %*% crossprod(X, w * y)
  e <- as.vector(y - X %*% b)
  H <- X %*% M %*% t(X * w)
  IH <- diag(n) - H
  Omega <- tcrossprod(IH)
  idx_list <- split(seq_len(n), cluster)
  A_list <- lapply(idx_list, function(idx) {
    ev <- eigen(Omega[idx, idx, drop = FALSE], symmetric = TRUE)
    ev$vectors %*% (t(ev$vectors) / sqrt(ev$values))
  })
  ## B_j = A_j W_j X_j (n_j x p)
  B_list <- Map(function(idx, A) A %*% (X[idx, , drop = FALSE] * w[idx]),
                idx_list, A_list)
  meat <- Reduce(`+`, Map(function(idx, B) {
    u <- crossprod(B, e[idx])
    tcrossprod(u)
  }, idx_list, B_list))
  V <- M %*% meat %*% M
  df_fun <- function(cvec) {
    Mc <- M %*% cvec
    Gm <- matrix(0, n, length(idx_list))
    for (j in seq_along(idx_list)) Gm[idx_list[[j]], j] <- B_list[[j]] %*% Mc
    P <- crossprod(Gm, Omega %*% Gm)
    list(var = sum(crossprod(Gm, e)^2), df = sum(diag(P))^2 / sum(P^2))
  }
  list(V = V, df_fun = df_fun)
}

## ---------------------------------------------------------------------------
## Data set 1: did_cs (2x2 DiD, cross-section-like)
##   survey design: 7 strata with 2, 3, 5, 6, 2, 3, 5 PSUs (26 PSUs;
##     n_h chosen so that JKn factors n_h/(n_h-1) are short decimals);
##     psu = 100*stratum + j (globally unique), rows sorted by PSU;
##     fpc = population number of PSUs N_h;
##     pair = 1..13: consecutive PSUs paired (pseudo-strata with exactly
##     2 PSUs each, used for BRR / Fay; pairs may straddle strata).
##   cl: 30 clusters of unequal size, independent of the PSUs.
##   w ~ U(1, 5) (3 decimals).
## ---------------------------------------------------------------------------
make_did_cs <- function() {
  n_psu <- c(2L, 3L, 5L, 6L, 2L, 3L, 5L)
  N_psu <- c(9L, 7L, 25L, 14L, 6L, 30L, 11L)
  psu_stratum <- rep(seq_along(n_psu), n_psu)
  G <- length(psu_stratum)
  psu_lab <- 100L * psu_stratum + sequence(n_psu)
  sizes <- sample(10:20, G, replace = TRUE)
  strat_eff <- rnorm(length(n_psu), 0, 1)
  psu_eff <- rnorm(G, 0, 0.7)
  rows <- rep(seq_len(G), sizes)
  n <- length(rows)
  cl_prob <- (1:30)^1.2
  cl <- sample(1:30, n, replace = TRUE, prob = cl_prob)
  cl[sample(n, 30)] <- 1:30                  # every cluster present
  cl_eff <- rnorm(30, 0, 0.6)
  stratum <- psu_stratum[rows]
  treat <- as.integer(runif(n) < plogis(-0.2 + 0.25 * strat_eff[stratum]))
  post <- as.integer(runif(n) < 0.5)
  x1 <- round(rnorm(n) + 0.4 * treat, 4)
  x2 <- round(runif(n, 0, 2), 4)
  w <- round(runif(n, 1, 5), 3)
  y <- 2 + strat_eff[stratum] + psu_eff[rows] + cl_eff[cl] + 0.6 * treat +
    0.4 * post + 1.5 * treat * post + 0.8 * x1 - 0.5 * x2 +
    rnorm(n, 0, 0.8 + 0.5 * x2 + 0.3 * treat)
  data.frame(
    y = round(y, 4), treat = treat, post = post, x1 = x1, x2 = x2, w = w,
    cl = cl, stratum = stratum, psu = psu_lab[rows],
    fpc = N_psu[stratum], pair = as.integer(ceiling(rows / 2))
  )
}

## Data set 2: twfe_panel, 40 units x 6 periods; units 21..40 treated from
## period 4 (d = unit-period treatment indicator); w constant within unit;
## x1 time-varying.
make_twfe_panel <- function() {
  n_unit <- 40L
  T <- 6L
  unit <- rep(seq_len(n_unit), each = T)
  period <- rep(seq_len(T), times = n_unit)
  ever <- as.integer(unit > n_unit / 2)
  d <- as.integer(ever == 1L & period >= 4L)
  a_i <- rnorm(n_unit, 0, 1.5) + 0.5 * (seq_len(n_unit) > n_unit / 2)
  g_t <- c(0, 0.3, 0.5, 0.9, 1.0, 1.4)
  w_u <- round(runif(n_unit, 1, 5), 3)
  x1 <- round(rnorm(n_unit * T) + 0.2 * period + 0.3 * ever, 4)
  y <- a_i[unit] + g_t[period] + 2 * d + 0.5 * x1 +
    rnorm(n_unit * T, 0, 0.7 + 0.4 * ever)
  data.frame(y = round(y, 4), d = d, unit = unit, period = period,
             ever_treated = ever, x1 = x1, w = w_u[unit])
}

## Data set 3: event_panel, 50 units x 6 periods; treat = ever treated
## (25 units, random); effects 1.0, 1.6, 2.1 in periods 4, 5, 6.
make_event_panel <- function() {
  n_unit <- 50L
  T <- 6L
  unit <- rep(seq_len(n_unit), each = T)
  period <- rep(seq_len(T), times = n_unit)
  tr_u <- integer(n_unit)
  tr_u[sample(n_unit, n_unit / 2)] <- 1L
  treat <- tr_u[unit]
  eff <- c(0, 0, 0, 1.0, 1.6, 2.1)
  a_i <- rnorm(n_unit, 0, 1) + 0.4 * tr_u
  g_t <- c(0, 0.2, 0.1, 0.5, 0.6, 0.8)
  w_u <- round(runif(n_unit, 1, 5), 3)
  x1 <- round(rnorm(n_unit * T) + 0.1 * period, 4)
  y <- a_i[unit] + g_t[period] + eff[period] * treat + 0.3 * x1 +
    rnorm(n_unit * T, 0, 0.6 + 0.5 * treat)
  data.frame(y = round(y, 4), treat = treat, unit = unit, period = period,
             x1 = x1, w = w_u[unit])
}

datasets <- list(
  did_cs = json_roundtrip(make_did_cs()),
  twfe_panel = json_roundtrip(make_twfe_panel()),
  event_panel = json_roundtrip(make_event_panel())
)

## ---------------------------------------------------------------------------
## Replicate designs on did_cs (converted from Taylor designs without fpc).
## Exported as combined analysis weights weights(rep, "analysis"):
##   jk1_a_<r>  JK1 of the unstratified design ids = ~psu (26 replicates)
##   jkn_a_<r>  JKn of strata = ~stratum, ids = ~psu (26 replicates)
##   brr_a_<r>  BRR of strata = ~pair, ids = ~psu (13 pairs, 16 replicates)
##   fay_a_<r>  Fay (rho = 0.5) of the same design (16 replicates)
##   boot_a_<r> bootstrap of strata = ~stratum, ids = ~psu (40 replicates)
## ---------------------------------------------------------------------------
rep_variants <- list()
local({
  d <- datasets$did_cs
  des_jk1 <- svydesign(ids = ~psu, weights = ~w, data = d)
  des_str <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d)
  des_pair <- svydesign(ids = ~psu, strata = ~pair, weights = ~w, data = d)
  stopifnot(all(tapply(d$psu, d$pair, function(p) length(unique(p))) == 2))
  reps <- list(
    jk1 = list(method = "JK1", asrep = as.svrepdesign(des_jk1, type = "JK1", compress = FALSE)),
    jkn = list(method = "JKn", asrep = as.svrepdesign(des_str, type = "JKn", compress = FALSE)),
    brr = list(method = "BRR", asrep = as.svrepdesign(des_pair, type = "BRR", compress = FALSE)),
    fay = list(method = "Fay", rho = 0.5,
               asrep = as.svrepdesign(des_pair, type = "Fay", fay.rho = 0.5, compress = FALSE))
  )
  set.seed(5150)
  reps$boot <- list(method = "bootstrap",
                    asrep = as.svrepdesign(des_str, type = "bootstrap", replicates = 40,
                                           compress = FALSE))
  for (nm in names(reps)) {
    ac <- add_analysis_columns(d, reps[[nm]]$asrep, nm)
    d <- ac$df
    reps[[nm]]$cols <- ac$cols
    reps[[nm]]$name <- nm
  }
  ## JKn: stratum of the PSU dropped in each column.
  reps$jkn$rstrata <- jkn_replicate_strata(reps$jkn$asrep, d$stratum)
  datasets$did_cs <<- json_roundtrip(d)
  rep_variants <<- reps
})

## ---------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------
se_types <- c(classical = "classical", hc1 = "HC1", hc2 = "HC2", hc3 = "HC3", cr1 = "stata")
sandwich_vcov <- function(fit, vcov_type, cluster_vec) {
  switch(vcov_type,
         classical = vcov(fit),
         hc1 = vcovHC(fit, type = "HC1"),
         hc2 = vcovHC(fit, type = "HC2"),
         hc3 = vcovHC(fit, type = "HC3"),
         cr1 = vcovCL(fit, cluster = cluster_vec, type = "HC1", cadjust = TRUE))
}

## Fit one linear model and compute, for the coefficient `coef_name`, for the
## named coefficients `period_names` and for the contrast `avg_vec` (named
## numeric over coefficients), estimate / SE / df / p under vcov_type.
regress <- function(id, fml, data, wcol, ccol, vcov_type, coef_name,
                    period_names = NULL, avg_vec = NULL) {
  fit <- no_warn(fit_lm(fml, data, wcol), id)
  stopifnot(!any(is.na(coef(fit))))
  beta <- coef(fit)
  out <- list(n_obs = nrow(data), r_squared = summary(fit)$r.squared)
  cluster_vec <- if (is.null(ccol)) NULL else data[[ccol]]

  if (vcov_type %in% names(se_types)) {
    if (vcov_type == "cr1") stopifnot(!is.null(ccol)) else stopifnot(is.null(ccol))
    rob <- no_warn(fit_lmr(fml, data, wcol, if (vcov_type == "cr1") ccol else NULL,
                           se_types[[vcov_type]]), id)
    stopifnot(max(abs(rob$coefficients - beta)) < 1e-9 * max(1, abs(beta)))
    V <- vcov(rob)
    Vs <- sandwich_vcov(fit, vcov_type, cluster_vec)
    ## Fixed-effect dummies are left out of the comparison: with clusters =
    ## unit the unit-dummy SEs are numerical zeros (~1e-15) in both packages.
    keep <- !startsWith(names(beta), "factor(")
    note_check("estimatr_vs_sandwich",
               rel_diff(sqrt(diag(V))[keep], sqrt(diag(Vs))[keep]), 1e-10, id)
    stopifnot(abs(rob$r.squared - out$r_squared) < 1e-10)
    df_all <- rob$df
    one <- function(nm) stat_block(rob$coefficients[[nm]], rob$std.error[[nm]],
                                   rob$df[[nm]], rob$p.value[[nm]])
    out$coef <- one(coef_name)
    if (!is.null(period_names)) out$period_effects <- lapply(period_names, one)
    if (!is.null(avg_vec)) {
      cvec <- avg_vec[names(beta)]
      est <- sum(cvec * rob$coefficients)
      se <- sqrt(drop(t(cvec) %*% V %*% cvec))
      df <- unique(unname(df_all))
      stopifnot(length(df) == 1)
      out$avg <- stat_block(est, se, df, t_pvalue(est, se, df))
    }
  } else if (vcov_type == "hc2_bm") {
    cvec_cl <- if (is.null(ccol)) seq_len(nrow(data)) else cluster_vec
    V <- no_warn(vcovCR(fit, cluster = cvec_cl, type = "CR2"), id)
    ct <- no_warn(coef_test(fit, vcov = V, test = "Satterthwaite"), id)
    man <- cr2_manual(model.matrix(fit), data$y,
                      if (is.null(wcol)) NULL else data[[wcol]], cvec_cl)
    note_check("clubsandwich_vs_manual_se",
               rel_diff(sqrt(diag(as.matrix(V))), sqrt(diag(man$V))), 1e-9, id)
    one <- function(nm) {
      row <- ct[ct$Coef == nm, ]
      stopifnot(nrow(row) == 1)
      e <- setNames(as.numeric(names(beta) == nm), names(beta))
      m <- man$df_fun(e)
      note_check("clubsandwich_vs_manual_df", rel_diff(row$df_Satt, m$df), 1e-8, id)
      stat_block(row$beta, row$SE, row$df_Satt, row$p_Satt)
    }
    out$coef <- one(coef_name)
    if (!is.null(period_names)) out$period_effects <- lapply(period_names, one)
    ## Single linear combination.  clubSandwich 0.5.8's linear_contrast()
    ## fails for weighted lm fits (its Satterthwaite branch for the 4-d H array
    ## refers to an undefined `q`), so the reported values come from
    ## Wald_test() with a one-row constraint matrix and test = "HTZ": for one
    ## constraint the HTZ statistic is t^2 and its denominator df is the
    ## Satterthwaite df.  linear_contrast() is used as a cross-check where it
    ## works (unweighted fits), and the explicit formulas always.
    lc <- function(cvec, label) {
      C <- matrix(cvec[names(beta)], nrow = 1, dimnames = list(label, names(beta)))
      wt <- no_warn(Wald_test(fit, constraints = C, vcov = V, test = "HTZ"), id)
      est <- drop(C %*% beta)
      se <- sqrt(drop(C %*% as.matrix(V) %*% t(C)))
      stopifnot(nrow(wt) == 1, wt$df_num == 1)
      note_check("wald_htz_vs_t", max(rel_diff(wt$Fstat, (est / se)^2),
                                      rel_diff(wt$p_val, t_pvalue(est, se, wt$df_denom))),
                 1e-9, id)
      m <- man$df_fun(cvec[names(beta)])
      note_check("clubsandwich_vs_manual_df", rel_diff(wt$df_denom, m$df), 1e-8, id)
      note_check("clubsandwich_vs_manual_se", rel_diff(se, sqrt(m$var)), 1e-9, id)
      if (is.null(wcol)) {
        r <- no_warn(linear_contrast(fit, vcov = V, contrasts = C,
                                     test = "Satterthwaite", p_values = TRUE), id)
        note_check("wald_htz_vs_linear_contrast",
                   max(rel_diff(r$Est, est), rel_diff(r$SE, se), rel_diff(r$df, wt$df_denom),
                       rel_diff(r$p_val, wt$p_val)), 1e-9, id)
      } else {
        lc_err <- tryCatch({
          linear_contrast(fit, vcov = V, contrasts = C, test = "Satterthwaite")
          FALSE
        }, error = function(e) TRUE)
        checks$linear_contrast_fails_weighted <- checks$linear_contrast_fails_weighted && lc_err
      }
      stat_block(est, se, wt$df_denom, wt$p_val)
    }
    e_att <- setNames(as.numeric(names(beta) == coef_name), names(beta))
    chk <- lc(e_att, "att")
    note_check("contrast_vs_coef_test",
               max(rel_diff(chk$se, out$coef$se), rel_diff(chk$df, out$coef$df),
                   rel_diff(chk$p_value, out$coef$p_value)), 1e-10, id)
    if (!is.null(avg_vec)) out$avg <- lc(avg_vec, "avg")
  } else {
    stop("unknown vcov_type ", vcov_type)
  }
  for (i in seq_along(out$period_effects)) {
    out$period_effects[[i]] <- c(list(period = attr(period_names, "periods")[i]),
                                 out$period_effects[[i]])
  }
  list(
    coef = out$coef,
    period_effects = if (is.null(period_names)) NULL else out$period_effects,
    avg = out$avg,
    n_obs = out$n_obs,
    r_squared = out$r_squared
  )
}

make_args <- function(time, unit = NULL, covariates = character(0),
                      reference_period = NULL, post_periods = NULL, treatment = "treat") {
  list(outcome = "y", treatment = treatment, time = time, unit = unit,
       covariates = I(covariates), reference_period = reference_period,
       post_periods = if (is.null(post_periods)) NULL else I(post_periods))
}

sfx <- function(covs, wcol) {
  paste0(if (length(covs)) "_cov" else "", if (is.null(wcol)) "" else "_w")
}

## --- 1. DifferenceInDifferences -------------------------------------------
did_vcovs <- list(
  list(type = "classical", cl = NULL), list(type = "hc1", cl = NULL),
  list(type = "hc2", cl = NULL), list(type = "hc3", cl = NULL),
  list(type = "cr1", cl = "cl"), list(type = "hc2_bm", cl = NULL),
  list(type = "hc2_bm", cl = "cl")
)
for (covs in list(character(0), c("x1", "x2"))) {
  for (wcol in list(NULL, "w")) {
    for (vc in did_vcovs) {
      fml <- as.formula(paste("y ~ treat + post + treat:post",
                              paste0(if (length(covs)) " + " else "",
                                     paste(covs, collapse = " + "))))
      id <- paste0("did_", vc$type, if (vc$type == "hc2_bm" && !is.null(vc$cl)) "_cl" else "",
                   sfx(covs, wcol))
      res <- regress(id, fml, datasets$did_cs, wcol, vc$cl, vc$type, "treat:post")
      push_case(list(id = id, dataset = "did_cs", estimator = "DifferenceInDifferences",
                     args = make_args("post", covariates = covs),
                     vcov_type = vc$type, cluster = vc$cl, weights = wcol,
                     survey_design = NULL, result = res))
    }
  }
}

## --- 2. MultiPeriodDiD ------------------------------------------------------
## y ~ treat + period dummies (all but the first period) + treat x period
## dummies (all but the reference period); post periods 4, 5, 6.
local({
  d <- datasets$event_panel
  periods <- sort(unique(d$period))
  ref <- 3L
  post <- periods[periods > ref]
  tp <- periods[periods != ref]
  for (t in periods[-1]) d[[paste0("p_", t)]] <- as.integer(d$period == t)
  for (t in tp) d[[paste0("treat_p_", t)]] <- d$treat * as.integer(d$period == t)
  pnames <- paste0("treat_p_", tp)
  attr(pnames, "periods") <- tp
  for (covs in list(character(0), "x1")) {
    rhs <- c("treat", paste0("p_", periods[-1]), pnames, covs)
    fml <- as.formula(paste("y ~", paste(rhs, collapse = " + ")))
    avg_vec <- setNames(numeric(length(rhs) + 1), c("(Intercept)", rhs))
    avg_vec[paste0("treat_p_", post)] <- 1 / length(post)
    for (wcol in list(NULL, "w")) {
      for (vc in list(list(type = "hc1", cl = NULL), list(type = "cr1", cl = "unit"),
                      list(type = "hc2_bm", cl = "unit"))) {
        id <- paste0("mp_", vc$type, sfx(covs, wcol))
        res <- regress(id, fml, d, wcol, vc$cl, vc$type, paste0("treat_p_", post[1]),
                       period_names = pnames, avg_vec = avg_vec)
        ## coef = the average post-period effect (the estimator's headline ATT),
        ## i.e. the same block as avg.
        res$coef <- res$avg
        push_case(list(id = id, dataset = "event_panel", estimator = "MultiPeriodDiD",
                       args = make_args("period", covariates = covs, reference_period = ref,
                                        post_periods = post),
                       vcov_type = vc$type, cluster = vc$cl, weights = wcol,
                       survey_design = NULL, result = res))
      }
    }
  }
})

## --- 3. TwoWayFixedEffects (dummy-variable regression) ---------------------
for (covs in list(character(0), "x1")) {
  fml <- as.formula(paste("y ~ d + factor(unit) + factor(period)",
                          if (length(covs)) paste("+", covs) else ""))
  for (wcol in list(NULL, "w")) {
    for (vc in list(list(type = "hc1", cl = NULL), list(type = "cr1", cl = "unit"))) {
      id <- paste0("twfe_", vc$type, sfx(covs, wcol))
      res <- regress(id, fml, datasets$twfe_panel, wcol, vc$cl, vc$type, "d")
      push_case(list(id = id, dataset = "twfe_panel", estimator = "TwoWayFixedEffects",
                     args = make_args("period", unit = "unit", covariates = covs,
                                      treatment = "d"),
                     vcov_type = vc$type, cluster = vc$cl, weights = wcol,
                     survey_design = NULL, result = res))
    }
  }
}

## --- 4. Survey: svyglm(y ~ treat * post [+ x1]) ----------------------------
svy_result <- function(fit, design, id) {
  b <- coef(fit)[["treat:post"]]
  se <- SE(fit)[["treat:post"]]
  df <- degf(design)
  sm <- summary(fit)$coefficients
  stopifnot(abs(sm["treat:post", 1] - b) < 1e-12, abs(sm["treat:post", 2] - se) < 1e-12 * se)
  stopifnot(fit$df.residual == degf(design) + 1 - length(coef(fit)))
  list(
    coef = stat_block(b, se, df, t_pvalue(b, se, df)),
    period_effects = NULL,
    avg = NULL,
    n_obs = nrow(design$variables),
    r_squared = NULL,
    svyglm_df_residual = fit$df.residual,
    svyglm_p_value = sm["treat:post", 4]
  )
}
svy_fml <- function(covs) {
  as.formula(paste("y ~ treat * post", if (length(covs)) paste("+", covs) else ""))
}

taylor_specs <- list(
  strat_psu_fpc = list(weights = "w", strata = "stratum", psu = "psu", fpc = "fpc"),
  strat_psu = list(weights = "w", strata = "stratum", psu = "psu"),
  psu_only = list(weights = "w", psu = "psu"),
  weights_only = list(weights = "w")
)
for (covs in list(character(0), "x1")) {
  for (nm in names(taylor_specs)) {
    spec <- taylor_specs[[nm]]
    d <- datasets$did_cs
    des <- make_design(spec, d)
    id <- paste0("svy_", nm, if (length(covs)) "_cov" else "")
    fit <- no_warn(svyglm(svy_fml(covs), design = des), id)
    push_case(list(id = id, dataset = "did_cs", estimator = "DifferenceInDifferences",
                   args = make_args("post", covariates = covs),
                   vcov_type = "hc1", cluster = NULL, weights = NULL,
                   survey_design = spec, result = svy_result(fit, des, id)))
  }
}

for (covs in list(character(0), "x1")) {
  for (v in rep_variants) {
    for (mse in c(FALSE, TRUE)) {
      d <- datasets$did_cs
      asrep <- v$asrep
      jk_boot <- v$method %in% c("JK1", "JKn", "bootstrap")
      id <- sprintf("svy_rep_%s%s_mse%s", v$name, if (length(covs)) "_cov" else "",
                    if (mse) "T" else "F")
      rep <- no_warn(rep_design(d, v$cols, weights = d$w, method = v$method,
                                combined = TRUE, mse = mse,
                                scale = if (jk_boot) asrep$scale,
                                rscales = if (jk_boot) asrep$rscales,
                                rho = if (v$method == "Fay") v$rho), id)
      check_rep_scales(rep, asrep$scale, asrep$rscales)
      fit <- no_warn(svyglm(svy_fml(covs), design = rep), id)
      res <- svy_result(fit, rep, id)
      ## Cross-check against the as.svrepdesign object itself.
      asrep$mse <- mse
      fit2 <- no_warn(svyglm(svy_fml(covs), design = asrep), id)
      note_check("replicate_vs_asrep",
                 max(rel_diff(SE(fit)[["treat:post"]], SE(fit2)[["treat:post"]]),
                     rel_diff(coef(fit)[["treat:post"]], coef(fit2)[["treat:post"]])),
                 1e-9, id)
      spec <- list(weights = "w", replicate_weights = I(v$cols),
                   replicate_method = v$method, combined_weights = TRUE, mse = mse)
      if (v$method == "Fay") spec$fay_rho <- v$rho
      if (v$method == "JKn") {
        spec$replicate_strata <- I(v$rstrata)
        spec$replicate_rscales <- I(as.numeric(rep$rscales))
      }
      if (v$method == "bootstrap") spec$replicate_scale <- rep$scale
      push_case(list(id = id, dataset = "did_cs", estimator = "DifferenceInDifferences",
                     args = make_args("post", covariates = covs),
                     vcov_type = "hc1", cluster = NULL, weights = NULL,
                     survey_design = spec, r_scale = rep$scale,
                     r_rscales = I(as.numeric(rep$rscales)), result = res))
    }
  }
}

## ---------------------------------------------------------------------------
## Side comparisons reported in meta.notes (not fixture values)
## ---------------------------------------------------------------------------
side <- local({
  d <- datasets$did_cs
  fml <- y ~ treat + post + treat:post
  lmw <- fit_lm(fml, d, "w")
  lmu <- fit_lm(fml, d, NULL)
  se_of <- function(V) sqrt(diag(as.matrix(V)))[["treat:post"]]
  ## estimatr CR2 vs clubSandwich CR2 (clustered), unweighted and weighted
  e_u <- lm_robust(fml, data = d, clusters = cl, se_type = "CR2")
  e_w <- lm_robust(fml, data = d, clusters = cl, weights = w, se_type = "CR2")
  c_u <- coef_test(lmu, vcov = vcovCR(lmu, cluster = d$cl, type = "CR2"))
  c_w <- coef_test(lmw, vcov = vcovCR(lmw, cluster = d$cl, type = "CR2"))
  cw_iv <- coef_test(lmw, vcov = vcovCR(lmw, cluster = d$cl, type = "CR2",
                                        inverse_var = TRUE))
  ## unclustered: clubSandwich CR2 (own clusters) vs HC2
  h_u <- se_of(vcovHC(lmu, type = "HC2"))
  h_w <- se_of(vcovHC(lmw, type = "HC2"))
  o_u <- coef_test(lmu, vcov = vcovCR(lmu, cluster = seq_len(nrow(d)), type = "CR2"))
  o_w <- coef_test(lmw, vcov = vcovCR(lmw, cluster = seq_len(nrow(d)), type = "CR2"))
  row <- function(ct) ct[ct$Coef == "treat:post", ]
  list(
    cr2_unw = rel_diff(e_u$std.error[["treat:post"]], row(c_u)$SE),
    cr2_unw_df = rel_diff(e_u$df[["treat:post"]], row(c_u)$df_Satt),
    cr2_w = rel_diff(e_w$std.error[["treat:post"]], row(c_w)$SE),
    cr2_w_df = rel_diff(e_w$df[["treat:post"]], row(c_w)$df_Satt),
    cr2_w_iv = rel_diff(e_w$std.error[["treat:post"]], row(cw_iv)$SE),
    cr2_w_iv_df = rel_diff(e_w$df[["treat:post"]], row(cw_iv)$df_Satt),
    own_unw = rel_diff(row(o_u)$SE, h_u),
    own_w = rel_diff(row(o_w)$SE, h_w)
  )
})

## ---------------------------------------------------------------------------
## Write
## ---------------------------------------------------------------------------
packages <- c("estimatr", "sandwich", "clubSandwich", "survey", "lmtest", "jsonlite")
out <- list(
  meta = fixture_meta(
    script_path,
    versions = list(packages = setNames(lapply(packages, pkg_version), packages)),
    notes = paste(
      "Reference values for regression DiD estimators.",
      "classical/hc1/hc2/hc3/cr1: estimatr::lm_robust (se_type classical/HC1/HC2/HC3;",
      "cr1 = clusters + se_type 'stata', G/(G-1)*(n-1)/(n-k)); df = estimatr's df column",
      "(n-k for classical and HC types, G-1 for cr1); p = 2*pt(-|t|, df).",
      sprintf(paste("estimatr agrees with lm + sandwich::vcovHC(type=HC*) / vcovCL(type='HC1',",
                    "cadjust=TRUE) in every such case (max relative SE difference %.2g)."),
              checks$estimatr_vs_sandwich),
      "hc2_bm: clubSandwich::vcovCR(lm, type='CR2') with cluster = the cluster column, or",
      "the row index when cluster is null; coef_test(test='Satterthwaite') for",
      "coefficients and Wald_test(constraints = one-row matrix, test='HTZ') for the",
      "MultiPeriodDiD average (F = t^2, df_denom = Satterthwaite df; linear_contrast()",
      "gives identical values for unweighted fits but errors for weighted lm fits in",
      "clubSandwich 0.5.8).  With lm weights clubSandwich uses W = diag(w) in the",
      "estimator but keeps the working covariance Theta = I (inverse_var defaults to",
      "FALSE when the lm has weights), so its weighted CR2 is not the HC2/CR2 of the",
      "sqrt(w)-transformed regression.",
      sprintf(paste("Explicit re-implementation of those formulas (see cr2_manual in the",
                    "script) matches clubSandwich to %.2g (SE) and %.2g (df)."),
              checks$clubsandwich_vs_manual_se, checks$clubsandwich_vs_manual_df),
      sprintf(paste("Side comparisons on did_cs, treat:post, relative differences:",
                    "estimatr CR2 vs clubSandwich CR2 (cluster cl) unweighted SE %.2g, df %.2g;",
                    "weighted SE %.2g, df %.2g; weighted with clubSandwich inverse_var=TRUE",
                    "SE %.2g, df %.2g.  clubSandwich CR2 with own-row clusters vs",
                    "sandwich HC2: unweighted %.2g, weighted %.2g."),
              side$cr2_unw, side$cr2_unw_df, side$cr2_w, side$cr2_w_df,
              side$cr2_w_iv, side$cr2_w_iv_df, side$own_unw, side$own_w),
      "MultiPeriodDiD: y ~ treat + period dummies (periods 2..6) + treat x period",
      "dummies (all periods but reference 3); coef = avg (repeated) =",
      "the mean of the post-period interactions (4,5,6), SE sqrt(c'Vc), df as the",
      "coefficients (n-k or G-1) for hc1/cr1.",
      "TwoWayFixedEffects: lm_robust(y ~ d + factor(unit) + factor(period) [+ x1]);",
      "k counts all dummies; r_squared is the R^2 of the dummy regression.",
      "r_squared is summary(lm)$r.squared (weighted when weights are used).",
      "Survey cases: svyglm(y ~ treat*post [+ x1]) on the design; vcov_type is the",
      "estimator default (hc1) and is not used; se = svyglm SE of treat:post;",
      "df = degf(design); p_value = 2*pt(-|t|, degf); svyglm_df_residual =",
      "degf + 1 - #coefficients and svyglm_p_value (summary.svyglm) use that df.",
      "Replicate cases: svrepdesign rebuilt on the exported combined analysis weights",
      "(type, scale, rscales, rho, mse as in the case), df = qr rank of the analysis",
      "weight matrix - 1;",
      sprintf("they match the as.svrepdesign objects to %.2g.", checks$replicate_vs_asrep),
      "Data sets were passed through the same JSON serialisation before computing."
    )
  ),
  datasets = datasets,
  cases = cases
)

write_fixture(out, out_path)
cat("Cross-checks (max relative differences):\n")
for (nm in ls(checks)) cat(sprintf("  %-30s %s\n", nm, format(checks[[nm]], digits = 3)))
cat("Side comparisons:\n")
for (nm in names(side)) cat(sprintf("  %-28s %.3g\n", nm, side[[nm]]))
