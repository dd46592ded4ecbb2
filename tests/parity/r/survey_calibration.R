#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference fixtures: survey weight calibration (calibrate / rake) from R's
## `survey` package, for parity tests of diff_diff's calibrate() and rake().
##
## Run from the repository root:
##     Rscript tests/parity/r/survey_calibration.R
## Output:
##     tests/parity/fixtures/survey_calibration.json
##
## The script simulates one stratified, clustered sample (6 strata, 3-4 PSUs
## per stratum), calibrates its weights with survey::calibrate() (linear /
## raking / logit, with and without bounds, with trimming, per group) and
## survey::rake(), and records for every case the calibrated weights and
## svymean / svytotal of y and z, svyby(~y + z, ~dom, svymean) and degf() on
## the calibrated design.  Replicate-weight versions of the sample (JKn and
## bootstrap) are calibrated too; R then recalibrates every replicate.
##
## Population totals are written per margin level (all levels, no contrasts),
## per numeric auxiliary and optionally for "(Intercept)".  The R population
## vector for whatever model matrix R uses is derived from those per-level
## totals (see r_population()), and every case checks that the calibrated
## weights reproduce each per-level total.
## See tests/parity/r/README.md for the JSON layout.
## ---------------------------------------------------------------------------

if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")

script_path <- "tests/parity/r/survey_calibration.R"
out_path <- "tests/parity/fixtures/survey_calibration.json"

set.seed(20240921)

## Convergence settings.  R's defaults (calibrate epsilon = 1e-7, rake
## epsilon = 1) are far too loose for a 1e-8 parity test.
CAL_EPS <- 1e-13
CAL_MAXIT <- 500
RAKE_CONTROL <- list(maxit = 1000, epsilon = 1e-13, verbose = FALSE)
MARGIN_TOL <- 1e-10      # required max relative margin error (untrimmed cases)

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

## Replicate design from a Python spec with exported combined (analysis)
## weight columns.
make_rep_design <- function(spec, data) {
  rep_design(data, spec$replicate_weights, weights = data[[spec$weights]],
             method = spec$replicate_method, combined = TRUE,
             mse = isTRUE(spec$mse), scale = spec$replicate_scale,
             rscales = spec$replicate_rscales)
}

## ---- Totals ------------------------------------------------------------------
## A totals table is a data.frame with columns
##   by_var  (NA or "grp"), by_val (NA or group value),
##   margin  (column name or "(Intercept)"), level (NA for numeric/intercept),
##   total.
tot_rows <- function(margin, level, total, by_var = NA_character_, by_val = NA_character_) {
  data.frame(by_var = by_var, by_val = by_val, margin = margin,
             level = level, total = total, stringsAsFactors = FALSE)
}

## Indicator / value matrix D: one column per totals row; colSums(D * w) are
## the achieved totals that must equal totals$total.
totals_matrix <- function(totals, data) {
  n <- nrow(data)
  D <- matrix(0, n, nrow(totals))
  for (j in seq_len(nrow(totals))) {
    in_by <- if (is.na(totals$by_var[j])) rep(TRUE, n) else
      as.character(data[[totals$by_var[j]]]) == totals$by_val[j]
    m <- totals$margin[j]
    v <- if (m == "(Intercept)") rep(1, n) else if (is.na(totals$level[j]))
      as.numeric(data[[m]]) else as.numeric(as.character(data[[m]]) == totals$level[j])
    D[, j] <- v * in_by
  }
  D
}

## Population vector for R's model matrix M (any full-rank parameterisation
## whose column span equals the span of D): M = D A exactly, so the totals of
## M's columns are A' t.  A is not unique when D is rank deficient (levels of
## two margins both sum to N), but A' t is, provided t is consistent.
r_population <- function(formula, totals, data) {
  M <- model.matrix(formula, model.frame(formula, data))
  stopifnot(qr(M)$rank == ncol(M))
  D <- totals_matrix(totals, data)
  A <- MASS::ginv(D) %*% M
  stopifnot(max(abs(D %*% A - M)) < 1e-9)
  ## same span: D must also be reproducible from M
  stopifnot(qr(D)$rank == ncol(M),
            max(abs(M %*% (MASS::ginv(M) %*% D) - D)) < 1e-9)
  pop <- drop(crossprod(A, totals$total))
  names(pop) <- colnames(M)
  pop
}

margin_rel_error <- function(w, totals, data) {
  D <- totals_matrix(totals, data)
  max(abs(colSums(D * w) - totals$total) / abs(totals$total))
}

totals_json <- function(totals) {
  lapply(seq_len(nrow(totals)), function(j) {
    by <- if (is.na(totals$by_var[j])) structure(list(), names = character(0)) else
      setNames(list(totals$by_val[j]), totals$by_var[j])
    list(by = by, margin = totals$margin[j],
         level = if (is.na(totals$level[j])) NULL else totals$level[j],
         total = totals$total[j])
  })
}

## ---- Results -------------------------------------------------------------------
stat_block <- function(FUN, des, vars, id) {
  r <- no_warn(FUN(mk_formula(vars), des), id)
  stopifnot(all(is.finite(coef(r))), all(is.finite(SE(r))))
  list(variables = I(vars), estimate = I(unname(as.numeric(coef(r)))),
       se = I(unname(as.numeric(SE(r)))))
}

by_block <- function(des, vars, by, id) {
  r <- no_warn(svyby(mk_formula(vars), mk_formula(by), des, svymean), id)
  nd <- nrow(r)
  doms <- svyby_domains(r, by)
  est <- as.matrix(r[, vars, drop = FALSE])
  se <- as.matrix(SE(r))
  stopifnot(identical(dim(est), c(nd, length(vars))), identical(dim(se), dim(est)),
            all(is.finite(est)), all(is.finite(se)))
  ## SE(svyby) columns must be in the order of vars ("se.<var>" for Taylor
  ## designs, "se1", "se2", ... for replicate designs)
  stopifnot(identical(colnames(se), paste0("se.", vars)) ||
              identical(colnames(se), paste0("se", seq_along(vars))))
  list(by = I(by), domains = doms, variables = I(vars),
       estimate = unname(est), se = unname(se))
}

analysis_weights <- function(des) {
  if (inherits(des, "svyrep.design")) weights(des, "sampling") else weights(des)
}

result_block <- function(des, id) {
  list(
    weights = I(unname(as.numeric(analysis_weights(des)))),
    mean = stat_block(svymean, des, c("y", "z"), id),
    total = stat_block(svytotal, des, c("y", "z"), id),
    by_mean = by_block(des, c("y", "z"), "dom", id),
    df = as.integer(degf(des))
  )
}

## Add a case and print a one-line summary of it.
register <- function(case, extra_summary = "") {
  push_case(case)
  g <- case$result$weights / datasets[[case$dataset]][[case$design$weights]]
  cat(sprintf("%-44s err=%.1e  g=[%.3f, %.3f]  mean(y)=%.4f se=%.5f df=%d %s\n",
              case$id, case$max_margin_rel_error, min(g), max(g),
              case$result$mean$estimate[1], case$result$mean$se[1],
              case$result$df, extra_summary))
}

## ---------------------------------------------------------------------------
## Data set: stratified, clustered ("strat_clus")
##   6 strata with 3,4,3,4,3,4 PSUs (21 PSUs), 11-17 units per PSU.
##   psu    : globally unique labels (10*h + j)
##   fpc_n  : population number of PSUs N_h
##   w      : unequal weights (stratum base weight x U(0.5, 1.5), 3 decimals)
##   sex    : "F"/"M"; age: "18-34","35-49","50-64","65+";
##   educ   : "low","mid","high"; x: positive numeric auxiliary
##   y      : continuous outcome; z: 0/1 outcome
##   dom    : domain "A"/"B"/"C"
##   grp    : 4 state-year cells "CA-2019","CA-2020","TX-2019","TX-2020"
##            (state from the stratum, year at random); every cell contains
##            every sex and age level.
## ---------------------------------------------------------------------------
age_levels <- c("18-34", "35-49", "50-64", "65+")
educ_levels <- c("low", "mid", "high")
sex_levels <- c("F", "M")
grp_levels <- c("CA-2019", "CA-2020", "TX-2019", "TX-2020")

make_strat_clus <- function() {
  n_psu <- c(3L, 4L, 3L, 4L, 3L, 4L)
  N_psu <- c(12L, 20L, 9L, 15L, 30L, 10L)
  base_w <- c(8, 15, 10, 25, 12, 20)
  state <- c("CA", "CA", "CA", "TX", "TX", "TX")
  out <- list()
  for (h in seq_along(n_psu)) {
    s_eff <- rnorm(1, 0, 2)
    for (j in seq_len(n_psu[h])) {
      m <- sample(11:17, 1)
      p_eff <- rnorm(1, 0, 1.5)
      sex <- sample(sex_levels, m, replace = TRUE, prob = c(0.58, 0.42))
      age <- sample(age_levels, m, replace = TRUE, prob = c(0.18, 0.24, 0.30, 0.28))
      educ <- sample(educ_levels, m, replace = TRUE, prob = c(0.25, 0.45, 0.30))
      x <- round(exp(rnorm(m, 1, 0.5)), 3)
      ai <- match(age, age_levels)
      ei <- match(educ, educ_levels)
      y <- 20 + s_eff + p_eff + 2 * (sex == "M") + c(0, 3, 5, 8)[ai] +
        c(-2, 0, 3)[ei] + 1.5 * x + rnorm(m, 0, 3)
      z <- as.integer(runif(m) < plogis(-1 + 0.5 * ai - 0.4 * (sex == "M") +
                                          0.3 * (ei - 2) + 0.2 * p_eff))
      out[[length(out) + 1]] <- data.frame(
        stratum = h,
        psu = 10L * h + j,
        fpc_n = N_psu[h],
        w = round(base_w[h] * runif(m, 0.5, 1.5), 3),
        sex = sex, age = age, educ = educ, x = x,
        y = round(y, 4), z = z,
        dom = sample(c("A", "B", "C"), m, replace = TRUE, prob = c(0.4, 0.35, 0.25)),
        grp = paste(state[h], sample(c("2019", "2020"), m, replace = TRUE), sep = "-")
      )
    }
  }
  d <- do.call(rbind, out)
  rownames(d) <- NULL
  d
}

datasets <- list(strat_clus = json_roundtrip(make_strat_clus()))

local({
  d <- datasets$strat_clus
  for (g in grp_levels) {
    dg <- d[d$grp == g, ]
    stopifnot(all(sex_levels %in% dg$sex), all(age_levels %in% dg$age))
  }
  stopifnot(all(table(d$sex, d$age) > 0), all(table(d$age, d$educ) > 0))
})

## ---------------------------------------------------------------------------
## Population totals
##   Level totals are design-weighted sample totals moved by per-level
##   factors (10-30% off), rounded to integers, with the last level adjusted
##   so that every margin sums to the same population size N.
## ---------------------------------------------------------------------------
level_totals <- function(d, margin, levels, adj, N) {
  st <- vapply(levels, function(l) sum(d$w[d[[margin]] == l]), numeric(1))
  tt <- st * adj
  tt <- round(tt / sum(tt) * N)
  tt[length(tt)] <- N - sum(tt[-length(tt)])
  tot_rows(margin, levels, as.numeric(tt))
}

pop_totals <- local({
  d <- datasets$strat_clus
  N <- round(1.12 * sum(d$w))
  list(
    N = N,
    sex = level_totals(d, "sex", sex_levels, c(0.88, 1.18), N),
    age = level_totals(d, "age", age_levels, c(1.30, 1.08, 0.92, 0.78), N),
    educ = level_totals(d, "educ", educ_levels, c(1.28, 0.97, 0.82), N),
    x = tot_rows("x", NA_character_, round(1.25 * sum(d$w * d$x), 1)),
    intercept = tot_rows("(Intercept)", NA_character_, N)
  )
})

## Per-group (grp) totals for sex and age: group size moved by a group factor,
## level shares moved by group-specific factors.
grp_totals <- local({
  d <- datasets$strat_clus
  gf <- c(1.05, 1.22, 0.90, 1.15)
  sex_adj <- list(c(0.85, 1.20), c(1.10, 0.90), c(0.92, 1.12), c(1.20, 0.80))
  age_adj <- list(c(1.25, 1.00, 0.90, 0.80), c(0.80, 1.15, 1.05, 1.00),
                  c(1.10, 0.85, 1.20, 0.90), c(1.30, 1.10, 0.85, 0.75))
  rows <- list()
  for (k in seq_along(grp_levels)) {
    dg <- d[d$grp == grp_levels[k], ]
    Ng <- round(gf[k] * sum(dg$w))
    for (tt in list(level_totals(dg, "sex", sex_levels, sex_adj[[k]], Ng),
                    level_totals(dg, "age", age_levels, age_adj[[k]], Ng))) {
      tt$by_var <- "grp"
      tt$by_val <- grp_levels[k]
      rows[[length(rows) + 1]] <- tt
    }
  }
  do.call(rbind, rows)
})

margin_set <- function(...) do.call(rbind, pop_totals[c(...)])

## ---------------------------------------------------------------------------
## Designs
## ---------------------------------------------------------------------------
spec_sc <- list(weights = "w", strata = "stratum", psu = "psu")
spec_scf <- list(weights = "w", strata = "stratum", psu = "psu", fpc = "fpc_n")

## Replicate versions (no fpc).  Analysis weights are exported as columns of
## strat_clus (combined_weights = true), the data set is round-tripped again,
## and svrepdesign() is rebuilt on the stored columns; it must reproduce the
## as.svrepdesign() object.
rep_specs <- list()
local({
  d <- datasets$strat_clus
  des <- make_design(spec_sc, d)
  jkn <- as.svrepdesign(des, type = "JKn", compress = FALSE, mse = FALSE)
  set.seed(777)
  boot <- as.svrepdesign(des, type = "bootstrap", replicates = 30,
                         compress = FALSE, mse = FALSE)
  c1 <- add_analysis_columns(d, jkn, "jkn")
  c2 <- add_analysis_columns(c1$df, boot, "boot")
  d2 <- json_roundtrip(c2$df)
  stopifnot(identical(d2[, names(d)], d))
  datasets$strat_clus <<- d2
  stopifnot(jkn$scale == 1, all(boot$rscales == 1))
  ## scale / rscales are also stored with 15 significant digits; R uses the
  ## stored values.
  num_roundtrip <- function(x) fromJSON(toJSON(x, digits = NA))
  rep_specs$jkn <<- list(weights = "w", replicate_weights = I(c1$cols),
                         replicate_method = "JKn", combined_weights = TRUE,
                         replicate_rscales = I(num_roundtrip(as.numeric(jkn$rscales))),
                         mse = FALSE)
  rep_specs$boot <<- list(weights = "w", replicate_weights = I(c2$cols),
                          replicate_method = "bootstrap", combined_weights = TRUE,
                          replicate_scale = num_roundtrip(boot$scale), mse = FALSE)
  ## Rebuilt designs reproduce as.svrepdesign (uncalibrated) to 1e-9.
  for (nm in c("jkn", "boot")) {
    orig <- list(jkn = jkn, boot = boot)[[nm]]
    rb <- make_rep_design(rep_specs[[nm]], d2)
    for (FUN in list(svymean, svytotal)) {
      a <- FUN(~y + z, orig)
      b <- FUN(~y + z, rb)
      stopifnot(isTRUE(all.equal(SE(a), SE(b), tolerance = 1e-9)),
                isTRUE(all.equal(coef(a), coef(b), tolerance = 1e-12)))
    }
    cat(sprintf("replicate design %s: R=%d scale=%.6g degf(as.svrepdesign)=%d degf(svrepdesign)=%d\n",
                nm, ncol(rb$repweights), rb$scale, degf(orig), degf(rb)))
  }
})

build_design <- function(spec, data) {
  if (is.null(spec$replicate_weights)) return(make_design(spec, data))
  make_rep_design(spec, data)
}

## ---------------------------------------------------------------------------
## Case runner for calibrate()
##   formula : R model formula for the constraints (any parameterisation with
##             the same column span as the per-level totals)
##   calfun  : "linear" / "raking" / "logit", or a calfun object
## ---------------------------------------------------------------------------
add_calibrate_case <- function(id, spec, totals, formula, method, calfun = method,
                               by = NULL, bounds = NULL, trim = NULL) {
  data <- datasets$strat_clus
  des <- no_warn(build_design(spec, data), id)
  pop <- r_population(formula, totals, data)
  args <- list(design = des, formula = formula, population = pop, calfun = calfun,
               epsilon = CAL_EPS, maxit = CAL_MAXIT)
  if (!is.null(bounds)) args$bounds <- bounds
  if (!is.null(trim)) args$trim <- trim
  ## survey 4.1.1: calibrate() on a svyrep.design with uncompressed replicate
  ## weights fails with the default compress = NA, so pass FALSE.
  if (inherits(des, "svyrep.design")) args$compress <- FALSE
  cal <- no_warn(do.call(calibrate, args), id, collect_messages = TRUE)
  msgs <- attr(cal, "r_messages")
  attr(cal, "r_messages") <- NULL
  w <- analysis_weights(cal)
  err <- margin_rel_error(w, totals, data)
  extra <- list()
  if (is.null(trim)) {
    if (!(err < MARGIN_TOL)) stop(id, ": margin error ", err)
  } else {
    ## Trimming keeps only the grand total (see README); record the error of
    ## the calibration before trimming as well.
    args$trim <- NULL
    untrimmed <- no_warn(do.call(calibrate, args), id)
    err0 <- margin_rel_error(analysis_weights(untrimmed), totals, data)
    stopifnot(err0 < MARGIN_TOL, length(msgs) == 1,
              abs(sum(w) - sum(analysis_weights(untrimmed))) < 1e-8 * sum(w))
    extra$max_margin_rel_error_before_trim <- err0
  }
  if (!is.null(bounds)) {
    g <- w / weights(des, if (inherits(des, "svyrep.design")) "sampling" else NULL)
    stopifnot(all(g >= bounds[1] - 1e-12), all(g <= bounds[2] + 1e-12))
  }
  rep_err <- NA
  if (inherits(cal, "svyrep.design")) {
    ## every replicate is recalibrated to the same population totals
    A <- as.matrix(weights(cal, "analysis"))
    rep_err <- max(apply(A, 2, margin_rel_error, totals = totals, data = data))
    stopifnot(rep_err < MARGIN_TOL)
  }
  case <- c(list(
    id = id,
    dataset = "strat_clus",
    design = spec,
    "function" = "calibrate",
    method = method,
    by = if (is.null(by)) NULL else I(by),
    totals = totals_json(totals),
    bounds = if (is.null(bounds)) NULL else I(bounds),
    trim = if (is.null(trim)) NULL else I(trim),
    max_margin_rel_error = err),
    extra,
    list(result = result_block(cal, id)))
  register(case, paste(
    if (!is.na(rep_err)) sprintf("rep_err=%.1e", rep_err) else "",
    paste(msgs, collapse = "; ")))
  invisible(cal)
}

## ---------------------------------------------------------------------------
## Cases: Taylor design (strata + PSU), and strata + PSU + fpc
## ---------------------------------------------------------------------------
f_sex_age <- ~sex + age
f_sex_age_educ <- ~sex + age + educ

add_calibrate_case("linear_sex_age", spec_sc, margin_set("sex", "age"),
                   f_sex_age, "linear")
add_calibrate_case("linear_sex_age_x", spec_sc, margin_set("sex", "age", "x"),
                   ~sex + age + x, "linear")
add_calibrate_case("linear_intercept_x", spec_sc, margin_set("intercept", "x"),
                   ~x, "linear")
add_calibrate_case("linear_sex_age_x_bounds_0.6_1.8", spec_sc,
                   margin_set("sex", "age", "x"), ~sex + age + x, "linear",
                   bounds = c(0.6, 1.8))
add_calibrate_case("raking_sex_age_educ", spec_sc, margin_set("sex", "age", "educ"),
                   f_sex_age_educ, "raking")
add_calibrate_case("raking_sex_age_educ_x_bounds_0.5_2.5", spec_sc,
                   margin_set("sex", "age", "educ", "x"), ~sex + age + educ + x,
                   "raking", bounds = c(0.5, 2.5))
add_calibrate_case("raking_sex_age_educ_bounds_0.5_2.5", spec_sc,
                   margin_set("sex", "age", "educ"), f_sex_age_educ, "raking",
                   bounds = c(0.5, 2.5))
add_calibrate_case("raking_sex_age_educ_bounds_0.7_1.8", spec_sc,
                   margin_set("sex", "age", "educ"), f_sex_age_educ, "raking",
                   bounds = c(0.7, 1.8))
add_calibrate_case("logit_sex_age_educ_bounds_0.7_1.8", spec_sc,
                   margin_set("sex", "age", "educ"), f_sex_age_educ, "logit",
                   bounds = c(0.7, 1.8))
add_calibrate_case("logit_sex_age_educ_bounds_0.5_2.5", spec_sc,
                   margin_set("sex", "age", "educ"), f_sex_age_educ, "logit",
                   bounds = c(0.5, 2.5))
add_calibrate_case("logit_sex_age_educ_x_bounds_0.5_2.5", spec_sc,
                   margin_set("sex", "age", "educ", "x"), ~sex + age + educ + x,
                   "logit", bounds = c(0.5, 2.5))
## calfun = "linear" (a string) with infinite bounds is dispatched to R's
## regression calibration, which silently ignores trim=; the cal.linear
## object goes through grake() and honours trim=.
add_calibrate_case("linear_sex_age_x_trim_0.7_1.5", spec_sc,
                   margin_set("sex", "age", "x"), ~sex + age + x, "linear",
                   calfun = cal.linear, trim = c(0.7, 1.5))

## strata + PSU + fpc: one case per method.
add_calibrate_case("fpc_linear_sex_age", spec_scf, margin_set("sex", "age"),
                   f_sex_age, "linear")
add_calibrate_case("fpc_raking_sex_age_educ", spec_scf,
                   margin_set("sex", "age", "educ"), f_sex_age_educ, "raking")
add_calibrate_case("fpc_logit_sex_age_educ_bounds_0.5_2.5", spec_scf,
                   margin_set("sex", "age", "educ"), f_sex_age_educ, "logit",
                   bounds = c(0.5, 2.5))

## Per-group calibration (by = grp): ~0 + grp + grp:sex + grp:age spans the
## indicators "grp == g & sex == s" and "grp == g & age == a", i.e. every
## group is calibrated to its own sex and age totals.
f_grp <- ~0 + grp + grp:sex + grp:age
add_calibrate_case("by_grp_raking_sex_age", spec_sc, grp_totals, f_grp, "raking",
                   by = "grp")
add_calibrate_case("by_grp_linear_sex_age", spec_sc, grp_totals, f_grp, "linear",
                   by = "grp")

## ---------------------------------------------------------------------------
## rake(): sex, age, educ margins as data frames of level counts.
## ---------------------------------------------------------------------------
add_rake_case <- function(id, spec) {
  data <- datasets$strat_clus
  totals <- margin_set("sex", "age", "educ")
  des <- no_warn(build_design(spec, data), id)
  pm <- lapply(c("sex", "age", "educ"), function(m) {
    t <- totals[totals$margin == m, ]
    df <- data.frame(t$level, Freq = t$total, stringsAsFactors = FALSE)
    names(df)[1] <- m
    df
  })
  rk <- no_warn(rake(des, list(~sex, ~age, ~educ), pm, control = RAKE_CONTROL), id)
  w <- weights(rk)
  err <- margin_rel_error(w, totals, data)
  if (!(err < MARGIN_TOL)) stop(id, ": margin error ", err)

  ## Same weights from calibrate(calfun = "raking"): exact g-calibration
  ## (projection) variance.
  cal <- no_warn(calibrate(des, f_sex_age_educ,
                           r_population(f_sex_age_educ, totals, data),
                           calfun = "raking", epsilon = CAL_EPS, maxit = CAL_MAXIT), id)
  stopifnot(max(abs(weights(cal) / w - 1)) < 1e-10)

  ## R's rake() variance: the estimating function x is replaced by the
  ## result of 10 sweeps over the margins of
  ##     x <- x - w * (unweighted mean of x / w within the margin level),
  ## w being the weights after that margin's post-stratification in the last
  ## raking sweep (= the final weights at convergence).  Check that reading.
  backfit_se <- function(FUN_est) {
    xx <- FUN_est
    mlev <- lapply(c("sex", "age", "educ"), function(m) data[[m]])
    for (it in 1:10) for (mg in mlev) {
      xx <- xx - w * apply(xx / w, 2, ave, mg)
    }
    sqrt(diag(svyrecvar(xx, des$cluster, des$strata, des$fpc)))
  }
  Y <- as.matrix(data[, c("y", "z")])
  mY <- colSums(Y * w) / sum(w)
  se_mean_bf <- backfit_se(sweep(Y, 2, mY) * w / sum(w))
  se_total_bf <- backfit_se(Y * w)
  res <- result_block(rk, id)
  stopifnot(isTRUE(all.equal(unname(se_mean_bf), as.numeric(res$mean$se), tolerance = 1e-8)),
            isTRUE(all.equal(unname(se_total_bf), as.numeric(res$total$se), tolerance = 1e-8)))
  res$mean_exact_projection <- stat_block(svymean, cal, c("y", "z"), id)
  res$total_exact_projection <- stat_block(svytotal, cal, c("y", "z"), id)
  case <- list(
    id = id, dataset = "strat_clus", design = spec, "function" = "rake",
    method = "raking", by = NULL, totals = totals_json(totals),
    bounds = NULL, trim = NULL, max_margin_rel_error = err, result = res)
  register(case, sprintf("exact-projection se(mean y)=%.5f",
                         res$mean_exact_projection$se[1]))
}
add_rake_case("rake_sex_age_educ", spec_sc)
add_rake_case("fpc_rake_sex_age_educ", spec_scf)

## ---------------------------------------------------------------------------
## Replicate designs: every replicate is recalibrated to the same totals.
## ---------------------------------------------------------------------------
for (nm in c("jkn", "boot")) {
  add_calibrate_case(sprintf("%s_linear_sex_age", nm), rep_specs[[nm]],
                     margin_set("sex", "age"), f_sex_age, "linear")
  add_calibrate_case(sprintf("%s_raking_sex_age", nm), rep_specs[[nm]],
                     margin_set("sex", "age"), f_sex_age, "raking")
}

## ---------------------------------------------------------------------------
## Write
## ---------------------------------------------------------------------------
out <- list(
  meta = fixture_meta(
    script_path,
    notes = paste(
      "Calibration reference values from survey::calibrate / survey::rake,",
      "with calibrate(epsilon = 1e-13, maxit = 500) and",
      "rake(control = list(maxit = 1000, epsilon = 1e-13)).",
      "totals are per margin level (all levels), per numeric auxiliary and",
      "'(Intercept)'; R's population vector for its model matrix was derived",
      "from them.  by = ['grp'] cases used the formula ~0 + grp + grp:sex +",
      "grp:age (each group calibrated to its own totals).",
      "result.weights are weights(calibrated design) (replicate designs:",
      "the full-sample weights); mean/total are svymean/svytotal(~y + z);",
      "by_mean is svyby(~y + z, ~dom, svymean) with estimate/se as",
      "n_domains x n_variables; df = degf(calibrated design).",
      "Taylor variance after calibrate() is the g-calibration residual",
      "linearisation: g * d * (residual of the d-weighted least-squares fit of",
      "the estimating function / d on the calibration model matrix), d = the",
      "design weights, also for bounded and trimmed calibrations.",
      "rake() variance is R's own approximation: 10 backfitting sweeps over the",
      "margins replacing x by x - w * (unweighted mean of x/w within the margin",
      "level), w = final weights, i.e. an unweighted (not w-weighted)",
      "projection; rake cases also give mean_exact_projection and",
      "total_exact_projection, the SEs of calibrate(calfun = 'raking') with",
      "the same weights.  degf: unchanged by calibrate()/rake() on Taylor",
      "designs; on replicate designs linear (unbounded) calibration recomputes",
      "degf as rank(analysis weights, tol 1e-5) - 1 while raking/logit/bounded",
      "calibration keeps the original degf.  The trim case used calfun = cal.linear (the string",
      "'linear' with no bounds ignores trim=); trimming clips g to [lo, hi] and",
      "adds sum((g - g_clipped) * w) / sum(w[untrimmed]) to every untrimmed g,",
      "so only the grand total is kept and max_margin_rel_error is that of",
      "the trimmed weights (max_margin_rel_error_before_trim: before trimming).",
      "Replicate designs (JKn, bootstrap 30, mse = false) use combined analysis",
      "weight columns; calibrate() recalibrates every replicate to the same",
      "totals.  The data set was passed through the same JSON serialisation",
      "before computing, so R used exactly the stored values."
    )
  ),
  datasets = datasets,
  cases = cases
)

write_fixture(out, out_path)
