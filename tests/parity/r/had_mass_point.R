#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference fixture: the "mass point" design of a heterogeneous-adoption
## estimator.  With unit-level first differences dY and a dose D >= d_lower,
## where many units sit exactly at d_lower, the estimator is the Wald-IV /
## just-identified 2SLS coefficient of dY on D (with intercept), instrumented
## by Z = 1{D > d_lower}:
##     beta = (mean(dY|Z=1) - mean(dY|Z=0)) / (mean(D|Z=1) - mean(D|Z=0))
## (weighted means under sampling weights).
##
## Run from the repository root:
##     Rscript tests/parity/r/had_mass_point.R
## Output:
##     tests/parity/fixtures/had_mass_point.json
##
## Two deterministic data sets (no RNG; the formulas are in meta.data, the
## data themselves are not stored):
##   mass_point  d_lower = 0.2, about 30% of the units at d_lower;
##   zero_lower  d_lower = 0,   about 25% of the units at d_lower.
## For each: beta, unweighted classical / HC1 / CR1(psu) SEs from
## AER::ivreg + sandwich, and the design-based (Taylor linearisation) beta
## and SE from survey::svyby + svycontrast, for a stratified cluster design
## and for a weights-only design.  Cross-checks (the script stops if any
## fails): estimatr::iv_robust, explicit 2SLS sandwich formulas, the explicit
## Wald ratio, weighted ivreg, and an explicit linearisation of the ratio.
## ---------------------------------------------------------------------------

if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")  # loads survey and jsonlite; survey.lonely.psu = "remove"
suppressPackageStartupMessages({
  library(AER)
  library(sandwich)
  library(estimatr)
})

script_path <- "tests/parity/r/had_mass_point.R"
out_path <- "tests/parity/fixtures/had_mass_point.json"
rtol <- 1e-10
check_tol <- 1e-11  # cross-checks must agree to this relative difference

rel_diff <- function(a, b) max(abs(a - b) / pmax(abs(b), 1e-300))
checks <- new.env()
record_check <- function(name, a, b) {
  r <- rel_diff(a, b)
  if (!is.finite(r) || r > check_tol) stop(sprintf("Cross-check %s failed: %.3g", name, r))
  checks[[name]] <- max(if (is.null(checks[[name]])) 0 else checks[[name]], r)
  invisible(r)
}

## ---------------------------------------------------------------------------
## Data (deterministic; rebuildable in Python, see meta.data)
## ---------------------------------------------------------------------------

PHI_FRAC <- 0.6180339887498949
N <- 600L

make_data <- function(kind) {
  g <- seq_len(N)
  x <- g * PHI_FRAC
  u <- x - floor(x)                                     # frac(g * 0.618...)
  if (kind == "mass_point") {
    d_lower <- 0.2
    d <- ifelse(u < 0.3, 0.2, 0.2 + 1.5 * (u - 0.3)^1.5)
  } else {
    d_lower <- 0
    d <- ifelse(u < 0.25, 0, (u - 0.25) * 2)
  }
  dy <- 0.5 + 1.2 * (d - d_lower) + 0.8 * sin(3 * g) + 0.4 * cos(7 * g * u)
  stratum <- g %% 4L
  df <- data.frame(
    g = g, u = u, d = d, dy = dy,
    z = as.integer(d > d_lower),
    w = 1 + (g %% 4L) * 0.5,
    stratum = stratum,
    psu = stratum * 100L + (g - 1L) %/% 40L
  )
  ## Z must be exactly the "above the mass point" indicator of u.
  stopifnot(all(df$z == as.integer(u >= if (kind == "mass_point") 0.3 else 0.25)),
            all(d >= d_lower))
  ## Every stratum needs >= 2 PSUs (here 15 each, 10 units per PSU).
  n_psu <- tapply(df$psu, df$stratum, function(p) length(unique(p)))
  stopifnot(all(n_psu >= 2))
  attr(df, "d_lower") <- d_lower
  df
}

## ---------------------------------------------------------------------------
## Explicit formulas (cross-checks only; the fixture values come from
## AER/sandwich/survey)
## ---------------------------------------------------------------------------

## Just-identified 2SLS with X = [1, d], Z = [1, z].
manual_2sls <- function(df, cluster) {
  X <- cbind(1, df$d); Zm <- cbind(1, df$z); y <- df$dy
  n <- nrow(X); k <- ncol(X)
  b <- solve(crossprod(Zm, X), crossprod(Zm, y))
  e <- as.vector(y - X %*% b)
  A <- solve(crossprod(Zm, X))                           # (Z'X)^-1
  classical <- sum(e^2) / (n - k) * A %*% crossprod(Zm) %*% t(A)
  meat_hc <- crossprod(Zm * e)
  hc1 <- n / (n - k) * A %*% meat_hc %*% t(A)
  S <- rowsum(Zm * e, cluster)
  G <- nrow(S)
  cr1 <- G / (G - 1) * (n - 1) / (n - k) * A %*% crossprod(S) %*% t(A)
  list(beta = b[2], se_classical = sqrt(classical[2, 2]), se_hc1 = sqrt(hc1[2, 2]),
       se_cr1 = sqrt(cr1[2, 2]))
}

## Weighted Wald ratio and its Taylor-linearisation SE for a stratified
## cluster design (with-replacement PSUs, no fpc): V = sum_h n_h/(n_h-1)
## sum_j (t_hj - tbar_h)^2 with t_hj the PSU total of the influence values.
manual_survey <- function(df, strata, psu) {
  w <- df$w; z <- df$z
  W1 <- sum(w[z == 1]); W0 <- sum(w[z == 0])
  m1y <- sum((w * df$dy)[z == 1]) / W1; m0y <- sum((w * df$dy)[z == 0]) / W0
  m1d <- sum((w * df$d)[z == 1]) / W1; m0d <- sum((w * df$d)[z == 0]) / W0
  beta <- (m1y - m0y) / (m1d - m0d)
  psi <- w * (z / W1 * ((df$dy - m1y) - beta * (df$d - m1d)) -
              (1 - z) / W0 * ((df$dy - m0y) - beta * (df$d - m0d))) / (m1d - m0d)
  tot <- rowsum(psi, interaction(strata, psu, drop = TRUE))
  st <- tapply(strata, interaction(strata, psu, drop = TRUE), `[`, 1)
  v <- 0
  for (h in unique(st)) {
    t_h <- tot[st == h]
    n_h <- length(t_h)
    v <- v + n_h / (n_h - 1) * sum((t_h - mean(t_h))^2)
  }
  list(beta = beta, se = sqrt(v))
}

## ---------------------------------------------------------------------------
## Survey: svyby(~dy + d, ~z, svymean, covmat = TRUE) + svycontrast
## ---------------------------------------------------------------------------

## svyby names its coefficients "<z level>:<variable>", i.e. "0:dy", "1:dy",
## "0:d", "1:d" (domain varies fastest), so the contrast needs backticks.
WALD_EXPR <- quote((`1:dy` - `0:dy`) / (`1:d` - `0:d`))

survey_block <- function(des, id) {
  by <- no_warn(svyby(~dy + d, ~z, des, svymean, covmat = TRUE), id)
  cf <- coef(by)
  stopifnot(identical(names(cf), c("0:dy", "1:dy", "0:d", "1:d")))
  con <- no_warn(svycontrast(by, WALD_EXPR), id)
  V <- vcov(by)
  list(
    beta = unname(coef(con)),
    se = unname(SE(con)),
    df = degf(des),
    svyby_coef_names = names(cf),
    svyby_coef = unname(cf),
    svyby_vcov = unname(as.matrix(V))
  )
}

## ---------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------

data_checks <- list()

for (kind in c("mass_point", "zero_lower")) {
  df <- make_data(kind)
  d_lower <- attr(df, "d_lower")
  n <- nrow(df)
  data_checks[[kind]] <- list(
    n = n, n_at_d_lower = sum(df$z == 0), n_psu = length(unique(df$psu)),
    sum_d = sum(df$d), sum_dy = sum(df$dy), sum_w = sum(df$w),
    sum_wz = sum(df$w * df$z))

  ## --- unweighted 2SLS: AER::ivreg + sandwich ----------------------------
  fit <- no_warn(ivreg(dy ~ d | z, data = df), kind)
  beta <- unname(coef(fit)["d"])
  se_classical <- unname(sqrt(diag(vcov(fit)))["d"])
  se_hc1 <- unname(sqrt(diag(vcovHC(fit, type = "HC1")))["d"])
  se_cr1 <- unname(sqrt(diag(no_warn(
    vcovCL(fit, cluster = ~psu, type = "HC1", cadjust = TRUE), kind)))["d"])
  G <- length(unique(df$psu))

  ## cross-checks: Wald ratio, explicit 2SLS, estimatr::iv_robust
  wald <- (mean(df$dy[df$z == 1]) - mean(df$dy[df$z == 0])) /
          (mean(df$d[df$z == 1]) - mean(df$d[df$z == 0]))
  record_check("ivreg_vs_wald_ratio", beta, wald)
  man <- manual_2sls(df, df$psu)
  record_check("ivreg_vs_manual_beta", beta, man$beta)
  record_check("sandwich_vs_manual_se",
               c(se_classical, se_hc1, se_cr1), c(man$se_classical, man$se_hc1, man$se_cr1))
  est <- list(
    classical = iv_robust(dy ~ d | z, data = df, se_type = "classical"),
    HC1 = iv_robust(dy ~ d | z, data = df, se_type = "HC1"),
    stata = iv_robust(dy ~ d | z, data = df, clusters = psu, se_type = "stata"))
  record_check("sandwich_vs_estimatr_se",
               c(se_classical, se_hc1, se_cr1),
               vapply(est, function(e) unname(e$std.error["d"]), numeric(1)))
  record_check("ivreg_vs_estimatr_beta", beta, unname(est$HC1$coefficients["d"]))

  ## --- survey designs -------------------------------------------------------
  des_strat <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = df, nest = TRUE)
  des_w <- svydesign(ids = ~1, weights = ~w, data = df)
  svy_strat <- survey_block(des_strat, paste0(kind, "_strat"))
  svy_w <- survey_block(des_w, paste0(kind, "_weights_only"))

  ## cross-checks: weighted ivreg coefficient and explicit linearisation
  fit_w <- no_warn(ivreg(dy ~ d | z, data = df, weights = w), kind)
  record_check("svycontrast_vs_weighted_ivreg_beta", svy_strat$beta, unname(coef(fit_w)["d"]))
  ms <- manual_survey(df, df$stratum, df$psu)
  mw <- manual_survey(df, rep(1L, n), df$g)
  record_check("svycontrast_vs_manual_beta", c(svy_strat$beta, svy_w$beta), c(ms$beta, mw$beta))
  record_check("svycontrast_vs_manual_se", c(svy_strat$se, svy_w$se), c(ms$se, mw$se))

  push_case(list(
    id = kind,
    dataset = kind,
    d_lower = d_lower,
    result = list(
      beta = beta,
      intercept = unname(coef(fit)["(Intercept)"]),
      se_classical = se_classical,
      se_hc1 = se_hc1,
      se_cr1_psu = se_cr1,
      n_obs = n,
      n_clusters = G,
      df_classical = n - 2L,
      df_cr1 = G - 1L
    ),
    survey = list(
      strat_psu = c(list(design = list(weights = "w", strata = "stratum", psu = "psu",
                                       nest = TRUE)), svy_strat),
      weights_only = c(list(design = list(weights = "w")), svy_w)
    )
  ))
}

## ---------------------------------------------------------------------------
## Output
## ---------------------------------------------------------------------------

packages <- c("AER", "sandwich", "survey", "estimatr", "jsonlite")
data_meta <- list(
  g = "g = 1..600",
  u = "u_g = frac(g * 0.6180339887498949), frac(x) = x - floor(x)",
  mass_point = list(
    d_lower = 0.2,
    d = "D_g = 0.2 if u_g < 0.3 else 0.2 + 1.5 * (u_g - 0.3)^1.5",
    dy = "dY_g = 0.5 + 1.2 * (D_g - 0.2) + 0.8 * sin(3 g) + 0.4 * cos(7 g u_g)"),
  zero_lower = list(
    d_lower = 0,
    d = "D_g = 0 if u_g < 0.25 else (u_g - 0.25) * 2",
    dy = "dY_g = 0.5 + 1.2 * (D_g - 0) + 0.8 * sin(3 g) + 0.4 * cos(7 g u_g)"),
  z = "z_g = 1 if D_g > d_lower else 0 (equals u_g >= 0.3 / u_g >= 0.25)",
  w = "w_g = 1 + (g mod 4) * 0.5",
  stratum = "stratum_g = g mod 4",
  psu = paste("psu_g = stratum_g * 100 + floor((g - 1) / 40): 4 strata x 15 PSUs,",
              "10 units per PSU, 60 PSUs, labels unique across strata"),
  checks = data_checks
)

out <- list(
  meta = fixture_meta(
    script_path,
    rtol = rtol,
    versions = list(packages = setNames(lapply(packages, pkg_version), packages)),
    extra = list(data = data_meta,
                 cross_checks = as.list(checks)[sort(ls(checks))]),
    notes = paste(
      "Mass-point Wald-IV / 2SLS of dY on D (with intercept) instrumented by z = 1{D > d_lower}.",
      "result: unweighted AER::ivreg(dy ~ d | z). se_classical = sqrt(vcov(ivreg)),",
      "sigma^2 = sum(e^2)/(n-k), e = dy - X b with the actual d, k = 2, df n-k.",
      "se_hc1 = sandwich::vcovHC(type='HC1'): factor n/(n-k).",
      "se_cr1_psu = sandwich::vcovCL(cluster=~psu, type='HC1', cadjust=TRUE):",
      "factor G/(G-1) * (n-1)/(n-k), G = 60 PSUs (Stata / estimatr 'stata' CR1), df G-1.",
      "All three equal estimatr::iv_robust (classical / HC1 / clusters + 'stata') and",
      "the explicit (Z'X)^-1 Z' Omega Z (X'Z)^-1 formulas.",
      "survey: des = svydesign(ids=~psu, strata=~stratum, weights=~w, nest=TRUE) (strat_psu)",
      "or svydesign(ids=~1, weights=~w) (weights_only); by = svyby(~dy+d, ~z, des, svymean,",
      "covmat=TRUE), whose coef names are '0:dy','1:dy','0:d','1:d' (domain varies fastest);",
      "svycontrast(by, quote((`1:dy`-`0:dy`)/(`1:d`-`0:d`))) gives beta (= weighted ivreg",
      "coefficient) and its delta-method SE.  This equals the Taylor linearisation with",
      "influence values psi_i = w_i [z_i/W1 ((dy_i-m1y) - beta (d_i-m1d)) - (1-z_i)/W0",
      "((dy_i-m0y) - beta (d_i-m0d))] / (m1d - m0d) and V = sum_h n_h/(n_h-1) sum_j",
      "(t_hj - tbar_h)^2 over PSU totals t_hj (weights only: each unit its own PSU, one",
      "stratum); no fpc.  df = degf(design) (#PSU - #strata, or n - 1).",
      "svyby_vcov is in svyby_coef_names order; the '0:d' row/column is zero (D is",
      "constant at d_lower when z = 0).  Its cross-domain entries in weights_only are",
      "exact zeros up to rounding (about 1e-36 here): compare svyby_vcov with an absolute",
      "tolerance, not rtol.",
      "cross_checks: largest relative differences of the cross-checks (limit 1e-11).",
      "The data are not stored: rebuild them from meta.data (sin/cos/pow may differ from",
      "R's libm by an ulp; this is far below rtol)."
    )
  ),
  cases = cases
)
write_fixture(out, out_path, pretty = TRUE)
for (nm in sort(ls(checks))) cat(sprintf("  %-36s %.3g\n", nm, checks[[nm]]))
