#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference fixtures: Taylor-linearisation (svydesign) descriptives from R's
## `survey` package, for parity tests of diff_diff's SurveyDesign.
##
## Run from the repository root:
##     Rscript tests/parity/r/survey_descriptives.R
## Output:
##     tests/parity/fixtures/survey_descriptives.json
##
## The script simulates its own small data sets (deterministic, set.seed),
## builds svydesign() objects and records svymean / svytotal / svyby results
## (estimate, SE, deff, full vcov, degf) for a grid of design options:
##   * strata + globally-unique PSU labels, with two lonely strata (one PSU)
##     and one census stratum, for every survey.lonely.psu rule
##     (remove / certainty / adjust / average) and fpc none / counts / fractions;
##   * the same with PSU labels restarted within stratum (nest = TRUE);
##   * domain estimation with svyby (one and two by-columns);
##   * na.rm = TRUE on an outcome with missing values;
##   * strata without PSUs (ids = ~1), PSUs without strata, weights only.
## See tests/parity/r/README.md for the JSON layout.
## ---------------------------------------------------------------------------

if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")

script_path <- "tests/parity/r/survey_descriptives.R"
out_path <- "tests/parity/fixtures/survey_descriptives.json"

set.seed(20240917)

## One case: svymean / svytotal (or svyby) on the Taylor design `spec` of
## data set `dataset`, with the lonely-PSU rule of the spec ("remove" when
## the spec has none).
add_case <- function(id, dataset, spec, statistic, variables, by = NULL,
                     na_rm = FALSE, deff = TRUE) {
  lonely <- if (is.null(spec$lonely_psu)) "remove" else spec$lonely_psu
  old <- options(survey.lonely.psu = lonely)
  on.exit(options(old), add = TRUE)

  des <- no_warn(make_design(spec, datasets[[dataset]]), id)
  r <- svystat_checked(des, statistic, variables, by, deff, id, na_rm = na_rm)
  push_case(list(
    id = id,
    dataset = dataset,
    design = spec,
    statistic = statistic,
    variables = I(variables),
    by = if (is.null(by)) NULL else I(by),
    na_rm = na_rm,
    deff = !is.null(r$deff),
    result = c(r, list(df = as.integer(degf(des))))
  ))
}

## ---------------------------------------------------------------------------
## Data set 1: stratified, clustered ("strat_clus")
##   8 strata; PSUs per stratum 3,1,4,2,5,1,3,2 (strata 2 and 6 lonely);
##   stratum 4 is a census (N_h = n_h = 2).
##   psu       : globally unique labels (10*h + j)
##   psu_nest  : labels 1..n_h restarted in every stratum (needs nest = TRUE)
##   fpc_n     : population number of PSUs N_h
##   fpc_f     : sampling fraction n_h / N_h (1.0 in the census stratum)
##   w         : weights ~ U(1, 10) (rounded to 3 decimals)
##   y         : continuous outcome with stratum and PSU effects
##   x         : 0/1 outcome
##   ynas      : y with ~12% missing values
##   dom       : "A"/"B"/"C"; "C" occurs only in some PSUs of strata 1,2,3,5
##               (absent from strata 4,6,7,8; in stratum 1 (3 PSUs) only one
##               PSU contains "C"; stratum 2 is lonely and contains "C")
##   dom2      : integer 1/2
## ---------------------------------------------------------------------------
make_strat_clus <- function() {
  n_psu <- c(3L, 1L, 4L, 2L, 5L, 1L, 3L, 2L)
  N_psu <- c(10L, 4L, 10L, 2L, 20L, 5L, 12L, 8L)
  c_psus <- list(`1` = 1L, `2` = 1L, `3` = c(1L, 2L), `5` = c(2L, 3L, 4L))
  strat_eff <- round(rnorm(8, 0, 2), 3)
  out <- list()
  for (h in seq_along(n_psu)) {
    for (j in seq_len(n_psu[h])) {
      m <- sample(2:6, 1)
      psu_eff <- rnorm(1, 0, 1)
      has_c <- j %in% c_psus[[as.character(h)]]
      dom <- ifelse(runif(m) < 0.55, "A", "B")
      if (has_c) {
        dom[runif(m) < 0.5] <- "C"
        dom[1] <- "C"
      }
      y <- 10 + strat_eff[h] + psu_eff + rnorm(m, 0, 2) + 1.5 * (dom == "C")
      out[[length(out) + 1]] <- data.frame(
        stratum = h,
        psu = 10L * h + j,
        psu_nest = j,
        fpc_n = N_psu[h],
        fpc_f = n_psu[h] / N_psu[h],
        w = round(runif(m, 1, 10), 3),
        y = round(y, 4),
        x = as.integer(runif(m) < plogis(-0.5 + 0.1 * (y - 10))),
        dom = dom,
        dom2 = sample(1:2, m, replace = TRUE)
      )
    }
  }
  d <- do.call(rbind, out)
  d$ynas <- d$y
  d$ynas[runif(nrow(d)) < 0.12] <- NA
  d <- d[, c("stratum", "psu", "psu_nest", "fpc_n", "fpc_f", "w", "y", "x",
             "ynas", "dom", "dom2")]
  rownames(d) <- NULL
  d
}

## Data set 2: stratified, no PSU ("strat_srs"): 4 strata, element sampling.
##   fpc_n = population number of units N_h; fpc_f = n_h / N_h.
make_strat_srs <- function() {
  n_h <- c(9L, 14L, 11L, 16L)
  N_h <- c(60L, 200L, 40L, 320L)
  out <- list()
  for (h in seq_along(n_h)) {
    m <- n_h[h]
    y <- 20 + 3 * h + rnorm(m, 0, 4)
    out[[h]] <- data.frame(
      stratum = h,
      fpc_n = N_h[h],
      fpc_f = n_h[h] / N_h[h],
      w = round(runif(m, 1, 10), 3),
      y = round(y, 4),
      x = as.integer(runif(m) < 0.4),
      dom = sample(c("A", "B", "C"), m, replace = TRUE, prob = c(0.5, 0.3, 0.2))
    )
  }
  d <- do.call(rbind, out)
  rownames(d) <- NULL
  d
}

## Data set 3: clustered, no strata ("clus"): 10 PSUs of 2-7 units.
##   fpc_n = 40 PSUs in the population.  Also used for the weights-only design.
make_clus <- function() {
  out <- list()
  for (j in 1:10) {
    m <- sample(2:7, 1)
    eff <- rnorm(1, 0, 1.5)
    y <- 5 + eff + rnorm(m, 0, 1)
    out[[j]] <- data.frame(
      psu = 100L + j,
      fpc_n = 40L,
      w = round(runif(m, 1, 10), 3),
      y = round(y, 4),
      x = as.integer(runif(m) < plogis(eff)),
      dom = sample(c("A", "B", "C"), m, replace = TRUE)
    )
  }
  d <- do.call(rbind, out)
  rownames(d) <- NULL
  d
}

datasets <- list(
  strat_clus = json_roundtrip(make_strat_clus()),
  strat_srs = json_roundtrip(make_strat_srs()),
  clus = json_roundtrip(make_clus())
)

## Sanity checks on the designed features of strat_clus.
local({
  d <- datasets$strat_clus
  npsu <- tapply(d$psu, d$stratum, function(p) length(unique(p)))
  stopifnot(sum(npsu == 1) == 2)
  stopifnot(any(tapply(seq_len(nrow(d)), d$stratum, function(i)
    length(unique(d$psu[i])) == d$fpc_n[i][1])))
  stopifnot(all(d$fpc_f <= 1), sum(d$fpc_f == 1) > 0)
  c_strata <- unique(d$stratum[d$dom == "C"])
  stopifnot(length(c_strata) < length(unique(d$stratum)))
  c_psu_per_stratum <- tapply(d$psu[d$dom == "C"], d$stratum[d$dom == "C"],
                              function(p) length(unique(p)))
  stopifnot(any(c_psu_per_stratum == 1 & npsu[names(c_psu_per_stratum)] > 1))
  stopifnot(all(tapply(!is.na(d$ynas), d$dom, sum) >= 2))
})

## ---------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------
lonely_rules <- c("remove", "certainty", "adjust", "average")
fpc_opts <- list(none = NULL, count = "fpc_n", frac = "fpc_f")
var_sets <- list(y = "y", y_x = c("y", "x"))

sc_spec <- function(fpc, lonely, nest = FALSE) {
  s <- list(weights = "w", strata = "stratum",
            psu = if (nest) "psu_nest" else "psu")
  if (!is.null(fpc)) s$fpc <- fpc
  if (nest) s$nest <- TRUE
  s$lonely_psu <- lonely
  s
}

## 1. Full-sample mean / total, strat_clus, all lonely rules x fpc forms,
##    globally unique PSU labels and nested labels.
for (nest in c(FALSE, TRUE)) {
  lab <- if (nest) "strat_psu_nest" else "strat_psu"
  for (fpc_name in names(fpc_opts)) {
    for (lonely in lonely_rules) {
      spec <- sc_spec(fpc_opts[[fpc_name]], lonely, nest)
      for (stat in c("mean", "total")) {
        for (vn in names(var_sets)) {
          add_case(sprintf("%s_%s_%s_fpc_%s_%s", stat, vn, lab, fpc_name, lonely),
                   "strat_clus", spec, stat, var_sets[[vn]])
        }
      }
    }
  }
}

## 2. Domain estimation (svyby ~dom), all lonely rules x fpc forms.
for (nest in c(FALSE, TRUE)) {
  lab <- if (nest) "strat_psu_nest" else "strat_psu"
  rules <- if (nest) c("remove", "adjust") else lonely_rules
  fpcs <- if (nest) c("none", "count") else names(fpc_opts)
  for (fpc_name in fpcs) {
    for (lonely in rules) {
      spec <- sc_spec(fpc_opts[[fpc_name]], lonely, nest)
      for (stat in c("mean", "total")) {
        add_case(sprintf("by_dom_%s_y_%s_fpc_%s_%s", stat, lab, fpc_name, lonely),
                 "strat_clus", spec, stat, "y", by = "dom")
      }
    }
  }
}

## 3. svyby with two by-columns.
for (fpc_name in c("none", "count")) {
  for (lonely in c("remove", "adjust", "average")) {
    spec <- sc_spec(fpc_opts[[fpc_name]], lonely)
    for (stat in c("mean", "total")) {
      add_case(sprintf("by_dom_dom2_%s_y_strat_psu_fpc_%s_%s", stat, fpc_name, lonely),
               "strat_clus", spec, stat, "y", by = c("dom", "dom2"))
    }
  }
}

## 4. na.rm = TRUE on ynas.
for (fpc_name in c("none", "count")) {
  for (lonely in c("remove", "adjust", "average")) {
    spec <- sc_spec(fpc_opts[[fpc_name]], lonely)
    for (stat in c("mean", "total")) {
      add_case(sprintf("narm_%s_ynas_strat_psu_fpc_%s_%s", stat, fpc_name, lonely),
               "strat_clus", spec, stat, "ynas", na_rm = TRUE)
      add_case(sprintf("narm_by_dom_%s_ynas_strat_psu_fpc_%s_%s", stat, fpc_name, lonely),
               "strat_clus", spec, stat, "ynas", by = "dom", na_rm = TRUE)
    }
  }
}

## 5. Stratified, no PSU (ids = ~1).
for (fpc_name in names(fpc_opts)) {
  spec <- list(weights = "w", strata = "stratum")
  if (!is.null(fpc_opts[[fpc_name]])) spec$fpc <- fpc_opts[[fpc_name]]
  for (stat in c("mean", "total")) {
    for (vn in names(var_sets)) {
      add_case(sprintf("%s_%s_strat_nopsu_fpc_%s", stat, vn, fpc_name),
               "strat_srs", spec, stat, var_sets[[vn]])
    }
    add_case(sprintf("by_dom_%s_y_strat_nopsu_fpc_%s", stat, fpc_name),
             "strat_srs", spec, stat, "y", by = "dom")
  }
}

## 6. PSU without strata (with and without fpc), and weights only.
clus_specs <- list(
  psu_only_fpc_none = list(weights = "w", psu = "psu"),
  psu_only_fpc_count = list(weights = "w", psu = "psu", fpc = "fpc_n"),
  weights_only = list(weights = "w")
)
for (lab in names(clus_specs)) {
  spec <- clus_specs[[lab]]
  for (stat in c("mean", "total")) {
    for (vn in names(var_sets)) {
      add_case(sprintf("%s_%s_%s", stat, vn, lab), "clus", spec, stat, var_sets[[vn]])
    }
    add_case(sprintf("by_dom_%s_y_%s", stat, lab), "clus", spec, stat, "y", by = "dom")
  }
}

## ---------------------------------------------------------------------------
## Write
## ---------------------------------------------------------------------------
out <- list(
  meta = fixture_meta(
    script_path,
    notes = paste(
      "Taylor-linearisation reference values from survey::svydesign with",
      "svymean/svytotal/svyby (deff=TRUE unless the case says otherwise).",
      "estimate/se/deff are (n_domains or 1) x n_variables; vcov is the full",
      "k x k covariance for by=null cases, null for svyby cases; svyby rows",
      "are in svyby order and 'domains' lists the by-values per row.",
      "df = degf(design) of the full design (before na.rm / domain subsetting).",
      "lonely_psu is applied as options(survey.lonely.psu=...) with",
      "survey.adjust.domain.lonely=FALSE.  Data sets were passed through the",
      "same JSON serialisation before computing, so R used exactly the stored",
      "values.  deff for means uses (N-n)/(N*n)*svyvar with N=sum(weights);",
      "for totals svyvar*N^2*(N-n)/(N*n); nest=TRUE is R's nest=TRUE."
    )
  ),
  datasets = datasets,
  cases = cases
)

write_fixture(out, out_path)
