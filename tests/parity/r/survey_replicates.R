#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference fixtures: replicate-weight designs (svrepdesign) from R's
## `survey` package, for parity tests of diff_diff's SurveyDesign with
## replicate weights.
##
## Run from the repository root:
##     Rscript tests/parity/r/survey_replicates.R
## Output:
##     tests/parity/fixtures/survey_replicates.json
##
## For every replicate method the replicate columns are generated in R and
## exported as data-set columns in two forms:
##   (a) perturbation factors ("<m>_f_<r>")  -> combined_weights = false
##       (the analysis weight is factor * w);
##   (b) combined analysis weights ("<m>_a_<r>") = weights(rep, "analysis")
##       -> combined_weights = true.
## Reference numbers for each form come from svrepdesign() rebuilt on the
## exported columns (after a JSON round trip, so R uses exactly the stored
## values).  Form (a) is additionally checked against the as.svrepdesign()
## object itself and against form (b).
##
## Methods:
##   JK1        as.svrepdesign(type = "JK1") of an unstratified cluster design
##   JKn        as.svrepdesign(type = "JKn") of a stratified design (2-4 PSUs/str)
##   BRR, Fay   as.svrepdesign(type = "BRR" / "Fay", fay.rho = 0.3), 2 PSUs/str
##   bootstrap  as.svrepdesign(type = "bootstrap", replicates = 40)
##   SDR        svrepdesign(type = "successive-difference") on factors built
##              here: Sylvester-Hadamard matrix H of order 32; unit i
##              (i = 1..30, in frame order) gets, in replicate r,
##              f[i, r] = 1 + 2^(-3/2) * H[i + 1, r] - 2^(-3/2) * H[i + 2, r]
##              (Fay & Train 1995), i.e. values 1 - 2^(-1/2), 1, 1 + 2^(-1/2).
## See tests/parity/r/README.md for the JSON layout.
## ---------------------------------------------------------------------------

if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")

script_path <- "tests/parity/r/survey_replicates.R"
out_path <- "tests/parity/fixtures/survey_replicates.json"

set.seed(20240918)

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

## Build svrepdesign from exported columns.
##   v: variant (method, rho, r_scale, r_rscales); form: "factor"/"analysis"
build_rep <- function(data, v, form, mse) {
  jk_boot <- v$method %in% c("JK1", "JKn", "bootstrap")
  rep <- no_warn(rep_design(data, if (form == "factor") v$fcols else v$acols,
                            weights = data$w, method = v$method,
                            combined = (form == "analysis"), mse = mse,
                            scale = if (jk_boot) v$r_scale,
                            rscales = if (jk_boot) v$r_rscales,
                            rho = if (v$method == "Fay") v$rho),
                 paste(v$name, form))
  check_rep_scales(rep, v$r_scale, v$r_rscales)
  rep
}

add_case <- function(v, form, mse, statistic, variables, by = NULL, deff = TRUE) {
  id <- sprintf("%s%s_%s_%s_%s_mse%s",
                if (is.null(by)) "" else paste0("by_", paste(by, collapse = "_"), "_"),
                statistic, paste(variables, collapse = "_"), v$name,
                if (form == "factor") "factors" else "combined",
                if (mse) "T" else "F")
  data <- datasets[[v$dataset]]
  rep <- build_rep(data, v, form, mse)
  r <- svystat_checked(rep, statistic, variables, by, deff, id)
  deff <- !is.null(r$deff)

  ## Cross-checks: form (a) == as.svrepdesign object, form (a) == form (b).
  ref_objs <- list(build_rep(data, v, if (form == "factor") "analysis" else "factor", mse))
  if (!is.null(v$asrep)) {
    a <- v$asrep
    a$mse <- mse
    ref_objs[[2]] <- a
  }
  for (o in ref_objs) {
    r2 <- svystat_block(o, statistic, variables, by, deff, id)
    for (key in c("estimate", "se", "deff", "vcov")) {
      if (!is.null(r[[key]])) {
        ok <- isTRUE(all.equal(r[[key]], r2[[key]], tolerance = 1e-9))
        if (!ok) stop("Cross-check failed for ", id, " (", key, ")")
      }
    }
  }

  design <- list(weights = "w",
                 replicate_weights = I(if (form == "factor") v$fcols else v$acols),
                 replicate_method = v$method,
                 combined_weights = (form == "analysis"),
                 mse = mse)
  design <- c(design, v$extra_design)

  push_case(list(
    id = id,
    dataset = v$dataset,
    design = design,
    statistic = statistic,
    variables = I(variables),
    by = if (is.null(by)) NULL else I(by),
    na_rm = FALSE,
    deff = deff,
    r_scale = rep$scale,
    r_rscales = I(as.numeric(rep$rscales)),
    result = c(r, list(df = as.integer(degf(rep))))
  ))
}

## Add factor / analysis columns of an as.svrepdesign object to a data frame.
add_rep_columns <- function(df, rep, prefix) {
  f <- rep_factors(rep)
  stopifnot(nrow(f) == nrow(df))
  fc <- add_matrix_columns(df, f, paste0(prefix, "_f"))
  ac <- add_analysis_columns(fc$df, rep, prefix)
  stopifnot(length(ac$cols) == length(fc$cols))
  list(df = ac$df, fcols = fc$cols, acols = ac$cols)
}

## Base unit-level columns: w ~ U(2, 20), y continuous, x 0/1, dom A/B/C.
unit_cols <- function(m, eff) {
  y <- 50 + eff + rnorm(m, 0, 5)
  data.frame(
    w = round(runif(m, 2, 20), 3),
    y = round(y, 4),
    x = as.integer(runif(m) < plogis(eff / 3)),
    dom = sample(c("A", "B", "C"), m, replace = TRUE, prob = c(0.45, 0.35, 0.2))
  )
}

## Clustered/stratified base data: n_psu[h] PSUs in stratum h, 3-6 units each.
make_clustered <- function(n_psu, psu_base = 0L) {
  out <- list()
  for (h in seq_along(n_psu)) {
    se <- rnorm(1, 0, 4)
    for (j in seq_len(n_psu[h])) {
      m <- sample(3:6, 1)
      out[[length(out) + 1]] <- cbind(
        data.frame(stratum = h, psu = psu_base + 10L * h + j),
        unit_cols(m, se + rnorm(1, 0, 3))
      )
    }
  }
  d <- do.call(rbind, out)
  rownames(d) <- NULL
  d
}

## Sylvester Hadamard matrix of order 2^k.
sylvester <- function(k) {
  H <- matrix(1, 1, 1)
  for (i in seq_len(k)) H <- rbind(cbind(H, H), cbind(H, -H))
  H
}

datasets <- list()
variants <- list()

## Register a variant: v has name, dataset, method, fcols, acols, r_scale,
## r_rscales, extra_design (Python-only keys), asrep (as.svrepdesign object).
add_variant <- function(v) variants[[v$name]] <<- v

## ---------------------------------------------------------------------------
## JK1: unstratified, 10 PSUs; population of 40 PSUs for the fpc variant.
## ---------------------------------------------------------------------------
local({
  d <- make_clustered(10L)                # one pseudo-stratum
  d$stratum <- NULL
  d$fpc_n <- 40L
  des <- svydesign(ids = ~psu, weights = ~w, data = d)
  rep <- as.svrepdesign(des, type = "JK1", compress = FALSE)
  des_fpc <- svydesign(ids = ~psu, weights = ~w, fpc = ~fpc_n, data = d)
  rep_fpc <- as.svrepdesign(des_fpc, type = "JK1", compress = FALSE)
  stopifnot(max(abs(unclass(rep$repweights) - unclass(rep_fpc$repweights))) == 0)
  cols <- add_rep_columns(d, rep, "jk1")
  datasets$jk1 <<- json_roundtrip(cols$df)
  base <- list(dataset = "jk1", method = "JK1", fcols = cols$fcols, acols = cols$acols)
  add_variant(c(base, list(name = "jk1", r_scale = rep$scale, r_rscales = rep$rscales,
                           extra_design = list(), asrep = rep)))
  add_variant(c(base, list(name = "jk1_fpc", r_scale = rep_fpc$scale,
                           r_rscales = rep_fpc$rscales,
                           extra_design = list(replicate_scale = rep_fpc$scale),
                           asrep = rep_fpc)))
  ## Override test: with 10 PSUs the default (R-1)/R is 0.9, so use 0.8.
  stopifnot(rep$scale != 0.8)
  add_variant(c(base, list(name = "jk1_scale08", r_scale = 0.8,
                           r_rscales = rep$rscales,
                           extra_design = list(replicate_scale = 0.8), asrep = NULL)))
})

## ---------------------------------------------------------------------------
## JKn: 5 strata with 2,3,4,2,3 PSUs; fpc_n = population PSUs per stratum.
## ---------------------------------------------------------------------------
local({
  n_psu <- c(2L, 3L, 4L, 2L, 3L)
  N_psu <- c(10L, 6L, 20L, 4L, 9L)
  d <- make_clustered(n_psu)
  d$fpc_n <- N_psu[d$stratum]
  des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d)
  rep <- as.svrepdesign(des, type = "JKn", compress = FALSE)
  des_fpc <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, fpc = ~fpc_n, data = d)
  rep_fpc <- as.svrepdesign(des_fpc, type = "JKn", compress = FALSE)
  stopifnot(max(abs(unclass(rep$repweights) - unclass(rep_fpc$repweights))) == 0)
  cols <- add_rep_columns(d, rep, "jkn")
  ## replicate_strata: stratum of the PSU dropped (factor 0) in each replicate
  rstrata <- jkn_replicate_strata(rep, d$stratum)
  nh <- as.numeric(table(rstrata)[as.character(rstrata)])
  stopifnot(isTRUE(all.equal(as.numeric(rep$rscales), (nh - 1) / nh)), rep$scale == 1)
  datasets$jkn <<- json_roundtrip(cols$df)
  base <- list(dataset = "jkn", method = "JKn", fcols = cols$fcols, acols = cols$acols)
  add_variant(c(base, list(name = "jkn_strata", r_scale = rep$scale, r_rscales = rep$rscales,
                           extra_design = list(replicate_strata = I(rstrata)), asrep = rep)))
  add_variant(c(base, list(name = "jkn_rscales", r_scale = rep$scale, r_rscales = rep$rscales,
                           extra_design = list(replicate_rscales = I(as.numeric(rep$rscales))),
                           asrep = rep)))
  add_variant(c(base, list(name = "jkn_strata_rscales", r_scale = rep$scale,
                           r_rscales = rep$rscales,
                           extra_design = list(replicate_strata = I(rstrata),
                                               replicate_rscales = I(as.numeric(rep$rscales))),
                           asrep = rep)))
  add_variant(c(base, list(name = "jkn_fpc", r_scale = rep_fpc$scale,
                           r_rscales = rep_fpc$rscales,
                           extra_design = list(replicate_rscales = I(as.numeric(rep_fpc$rscales))),
                           asrep = rep_fpc)))
})

## ---------------------------------------------------------------------------
## BRR and Fay (rho = 0.3): 6 strata x 2 PSUs (8 Hadamard replicates).
## ---------------------------------------------------------------------------
local({
  d <- make_clustered(rep(2L, 6))
  des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d)
  brr <- as.svrepdesign(des, type = "BRR", compress = FALSE)
  fay <- as.svrepdesign(des, type = "Fay", fay.rho = 0.3, compress = FALSE)
  c1 <- add_rep_columns(d, brr, "brr")
  c2 <- add_rep_columns(c1$df, fay, "fay")
  datasets$brr <<- json_roundtrip(c2$df)
  add_variant(list(name = "brr", dataset = "brr", method = "BRR", fcols = c1$fcols,
                   acols = c1$acols, r_scale = brr$scale, r_rscales = brr$rscales,
                   extra_design = list(), asrep = brr))
  add_variant(list(name = "fay", dataset = "brr", method = "Fay", fcols = c2$fcols,
                   acols = c2$acols, r_scale = fay$scale, r_rscales = fay$rscales,
                   rho = 0.3, extra_design = list(fay_rho = 0.3), asrep = fay))
})

## ---------------------------------------------------------------------------
## Bootstrap: 4 strata with 3,4,5,3 PSUs, 40 replicates (Rao-Wu n_h-1 draws).
## as.svrepdesign uses scale = m / ((m - 1) * (R - 1)), m = harmonic mean of
## PSUs per stratum, not svrepdesign's default 1 / (R - 1).
## ---------------------------------------------------------------------------
local({
  d <- make_clustered(c(3L, 4L, 5L, 3L))
  des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d)
  set.seed(4040)
  rep <- as.svrepdesign(des, type = "bootstrap", replicates = 40, compress = FALSE)
  cols <- add_rep_columns(d, rep, "boot")
  datasets$boot <<- json_roundtrip(cols$df)
  base <- list(dataset = "boot", method = "bootstrap", fcols = cols$fcols, acols = cols$acols)
  add_variant(c(base, list(name = "boot", r_scale = rep$scale, r_rscales = rep$rscales,
                           extra_design = list(replicate_scale = rep$scale), asrep = rep)))
  R <- length(cols$fcols)
  add_variant(c(base, list(name = "boot_defaultscale", r_scale = 1 / (R - 1),
                           r_rscales = rep(1, R), extra_design = list(), asrep = NULL)))
})

## ---------------------------------------------------------------------------
## SDR: 30 units in frame order, 32 replicates (see header).
## ---------------------------------------------------------------------------
local({
  n <- 30L
  H <- sylvester(5)                       # 32 x 32
  R <- ncol(H)
  size <- sort(round(runif(n, 10, 100), 1))   # frame sorted by a size measure
  d <- unit_cols(n, 0)
  d$y <- round(d$y + 0.2 * size, 4)
  d <- cbind(data.frame(frame_order = seq_len(n), size = size), d)
  k <- 2^(-3 / 2)
  f <- 1 + k * H[2:(n + 1), , drop = FALSE] - k * H[3:(n + 2), , drop = FALSE]
  stopifnot(all(abs(f - 1) < 1e-12 | abs(abs(f - 1) - 2 * k) < 1e-12))
  fc <- add_matrix_columns(d, f, "sdr_f")
  ac <- add_matrix_columns(fc$df, f * d$w, "sdr_a")
  datasets$sdr <<- json_roundtrip(ac$df)
  add_variant(list(name = "sdr", dataset = "sdr", method = "SDR", fcols = fc$cols,
                   acols = ac$cols, r_scale = 4 / R, r_rscales = rep(1, R),
                   extra_design = list(), asrep = NULL))
})

## ---------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------
full_variants <- c("jk1", "jkn_strata", "brr", "fay", "boot", "sdr")
light_variants <- c("jk1_fpc", "jk1_scale08", "jkn_rscales", "jkn_strata_rscales",
                    "jkn_fpc", "boot_defaultscale")
for (vn in c(full_variants, light_variants)) {
  v <- variants[[vn]]
  full <- vn %in% full_variants
  for (form in c("factor", "analysis")) {
    for (mse in c(FALSE, TRUE)) {
      for (stat in c("mean", "total")) {
        if (full) add_case(v, form, mse, stat, "y")
        add_case(v, form, mse, stat, c("y", "x"))
        if (full || stat == "mean") add_case(v, form, mse, stat, "y", by = "dom")
      }
    }
  }
}

## ---------------------------------------------------------------------------
## Write
## ---------------------------------------------------------------------------
out <- list(
  meta = fixture_meta(
    script_path,
    notes = paste(
      "Replicate-weight reference values from survey::svrepdesign (svymean,",
      "svytotal, svyby; deff=TRUE unless the case says otherwise).",
      "Columns <m>_f_<r> are as.svrepdesign perturbation factors",
      "(combined_weights=false); <m>_a_<r> = weights(rep,'analysis') (combined_weights=true).",
      "Each case records R's scale/rscales as r_scale/r_rscales; design keys",
      "replicate_scale/replicate_rscales are given only where R differs from",
      "the svrepdesign() defaults (or to test an override).  Variance:",
      "scale * sum_r rscales_r (theta_r - c)^2, c = mean of replicates with",
      "rscales>0 (mse=false) or full-sample estimate (mse=true).",
      "df = degf(rep design) = qr rank of analysis weights - 1.",
      "Data sets were passed through the same JSON serialisation before computing",
      "(scale/rscales are written with 15 significant digits).",
      "SDR factors: f[i,r] = 1 + 2^(-3/2) H[i+1,r] - 2^(-3/2) H[i+2,r], H = 32x32",
      "Sylvester Hadamard, units i = 1..30 in frame_order."
    )
  ),
  datasets = datasets,
  cases = cases
)

write_fixture(out, out_path)
