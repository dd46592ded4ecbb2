## ---------------------------------------------------------------------------
## Helpers shared by the fixture scripts in tests/parity/r/.
##
## Every script checks that it runs from the repository root and then calls
##     source("tests/parity/r/_common.R")
## (the path is relative; see README.md).  Sourcing this file loads survey and
## jsonlite, sets the global options and defines the helpers below.  It draws
## no random numbers, so each script's set.seed() stream is not affected.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survey)
  library(jsonlite)
})

## Global options.  All but survey.lonely.psu are survey's own defaults; they
## are set explicitly so that an .Rprofile cannot change a fixture.
## survey_descriptives.R sets survey.lonely.psu per case and restores it.
options(
  survey.lonely.psu = "remove",
  survey.adjust.domain.lonely = FALSE,
  survey.ultimate.cluster = FALSE,
  survey.replicates.mse = FALSE,
  survey.drop.replicates = TRUE,
  stringsAsFactors = FALSE
)

## ---------------------------------------------------------------------------
## General
## ---------------------------------------------------------------------------

## jsonlite's digits = NA writes 15 significant digits, which is not always
## enough to round-trip a double.  Every data set is therefore passed through
## the same serialisation *before* any estimate is computed, so R works on
## exactly the numbers that the Python side reads.
json_roundtrip <- function(df) {
  txt <- toJSON(df, dataframe = "columns", digits = NA, na = "null")
  back <- as.data.frame(fromJSON(txt), stringsAsFactors = FALSE)
  stopifnot(identical(names(back), names(df)), nrow(back) == nrow(df))
  back
}

mk_formula <- function(vars) as.formula(paste("~", paste(vars, collapse = " + ")))

pkg_version <- function(p) as.character(packageVersion(p))

## Evaluate expr, stopping on any R warning (fixtures must be warning-free).
## With collect_messages = TRUE, messages (e.g. calibrate()'s "n weights were
## trimmed") are muffled and returned as attr(value, "r_messages").
no_warn <- function(expr, id, collect_messages = FALSE) {
  on_warning <- function(w) {
    stop("Unexpected R warning in case ", id, ": ", conditionMessage(w))
  }
  if (!collect_messages) return(withCallingHandlers(expr, warning = on_warning))
  msgs <- character(0)
  val <- withCallingHandlers(expr,
    warning = on_warning,
    message = function(m) {
      msgs <<- c(msgs, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    })
  attr(val, "r_messages") <- msgs
  val
}

## ---------------------------------------------------------------------------
## Designs
## ---------------------------------------------------------------------------

## Taylor design (svydesign) from a Python SurveyDesign spec: a named list
## with optional weights, strata, psu, fpc (column names) and nest.
make_design <- function(spec, data) {
  ids <- if (is.null(spec$psu)) ~1 else mk_formula(spec$psu)
  strata <- if (is.null(spec$strata)) NULL else mk_formula(spec$strata)
  fpc <- if (is.null(spec$fpc)) NULL else mk_formula(spec$fpc)
  weights <- if (is.null(spec$weights)) NULL else mk_formula(spec$weights)
  svydesign(ids = ids, strata = strata, weights = weights, fpc = fpc,
            nest = isTRUE(spec$nest), data = data)
}

## Python replicate_method -> svrepdesign type.
R_REP_TYPE <- c(BRR = "BRR", Fay = "Fay", JK1 = "JK1", JKn = "JKn",
                SDR = "successive-difference", bootstrap = "bootstrap")

## svrepdesign rebuilt on the replicate columns `cols` of data.  method is
## the Python replicate_method; scale, rscales and rho are passed to
## svrepdesign only when they are not NULL.
rep_design <- function(data, cols, weights, method, combined, mse,
                       scale = NULL, rscales = NULL, rho = NULL) {
  args <- list(data = data, repweights = as.matrix(data[, cols]),
               weights = weights, type = R_REP_TYPE[[method]],
               combined.weights = combined, mse = mse)
  args$rho <- rho
  args$scale <- scale
  args$rscales <- rscales
  do.call(svrepdesign, args)
}

## A rebuilt replicate design must carry the intended scale and rscales.
check_rep_scales <- function(rep, scale, rscales) {
  stopifnot(isTRUE(all.equal(rep$scale, scale, tolerance = 1e-14)),
            isTRUE(all.equal(as.numeric(rep$rscales), as.numeric(rscales),
                             tolerance = 1e-14)))
}

## n x R perturbation factors of an as.svrepdesign(compress = FALSE) object.
rep_factors <- function(rep) {
  if (inherits(rep$repweights, "repweights_compressed")) stop("need compress = FALSE")
  as.matrix(unclass(rep$repweights))
}

## Stratum (from the vector `strata`, one entry per row) of the PSU dropped,
## i.e. with factor 0, in each replicate of a JKn design.
jkn_replicate_strata <- function(rep, strata) {
  f <- rep_factors(rep)
  vapply(seq_len(ncol(f)), function(r) {
    s <- unique(strata[f[, r] == 0])
    stopifnot(length(s) == 1)
    as.integer(s)
  }, integer(1))
}

## Add the columns of matrix M to df as <prefix>_1, ..., <prefix>_R.
## Returns list(df, cols).
add_matrix_columns <- function(df, M, prefix) {
  cols <- sprintf("%s_%d", prefix, seq_len(ncol(M)))
  for (r in seq_along(cols)) df[[cols[r]]] <- unname(M[, r])
  list(df = df, cols = cols)
}

## Add weights(rep, "analysis") to df as <prefix>_a_1, ..., <prefix>_a_R (the
## columns used with combined_weights = true).  Returns list(df, cols).
add_analysis_columns <- function(df, rep, prefix) {
  a <- as.matrix(weights(rep, "analysis"))
  stopifnot(nrow(a) == nrow(df))
  add_matrix_columns(df, a, paste0(prefix, "_a"))
}

## ---------------------------------------------------------------------------
## svymean / svytotal results
## ---------------------------------------------------------------------------

## by-values of every svyby row: one list per row, factors as strings.
svyby_domains <- function(res, by) {
  lapply(seq_len(nrow(res)), function(i) {
    lapply(by, function(b) {
      v <- res[[b]][i]
      if (is.factor(v)) v <- as.character(v)
      v
    })
  })
}

## svymean or svytotal (statistic "mean" / "total") of `variables` for the
## full sample (by = NULL) or per domain with svyby.  estimate, se and deff
## are 2-D, (n_domains or 1) x n_variables; deff is NULL unless want_deff.
## vcov is the full k x k covariance, NULL for svyby.
svystat_block <- function(design, statistic, variables, by, want_deff, id,
                          na_rm = FALSE) {
  FUN <- switch(statistic, mean = svymean, total = svytotal)
  k <- length(variables)
  fml <- mk_formula(variables)
  if (is.null(by)) {
    res <- no_warn(FUN(fml, design, na.rm = na_rm, deff = want_deff), id)
    return(list(
      domains = NULL,
      estimate = matrix(unname(coef(res)), nrow = 1),
      se = matrix(unname(SE(res)), nrow = 1),
      deff = if (want_deff) matrix(unname(deff(res)), nrow = 1) else NULL,
      vcov = unname(as.matrix(vcov(res)))
    ))
  }
  ## coef/SE/deff of a svyby object are ordered variable-within-domain, so
  ## the reshape below needs a single variable.
  stopifnot(k == 1)
  res <- no_warn(svyby(fml, mk_formula(by), design, FUN, na.rm = na_rm,
                       deff = want_deff), id)
  list(
    domains = svyby_domains(res, by),
    estimate = matrix(unname(coef(res)), ncol = k),
    se = matrix(unname(SE(res)), ncol = k),
    deff = if (want_deff) matrix(unname(as.numeric(deff(res))), ncol = k) else NULL,
    vcov = NULL
  )
}

## svystat_block, falling back to deff = FALSE when R's deff is not finite
## (the block's deff is then NULL).  Stops on a non-finite estimate or SE.
svystat_checked <- function(design, statistic, variables, by, want_deff, id,
                            na_rm = FALSE) {
  r <- svystat_block(design, statistic, variables, by, want_deff, id, na_rm)
  if (want_deff && any(!is.finite(r$deff))) {
    r <- svystat_block(design, statistic, variables, by, FALSE, id, na_rm)
  }
  k <- length(variables)
  stopifnot(all(is.finite(r$estimate)), all(is.finite(r$se)),
            ncol(r$estimate) == k, ncol(r$se) == k)
  r
}

## ---------------------------------------------------------------------------
## Cases and output
## ---------------------------------------------------------------------------

## Fixture cases, in the order they are added.  Case ids must be unique.
cases <- list()
case_ids <- character(0)

push_case <- function(case) {
  if (case$id %in% case_ids) stop("Duplicate case id: ", case$id)
  cases[[length(cases) + 1]] <<- case
  case_ids <<- c(case_ids, case$id)
  invisible(case)
}

## The meta block of a fixture: script, R_version, the package versions,
## rtol, any extra entries, generated (today's date) and notes.
fixture_meta <- function(script, notes, rtol = 1e-8,
                         versions = list(survey_version = pkg_version("survey")),
                         extra = list()) {
  c(list(script = script, R_version = R.version.string), versions,
    list(rtol = rtol), extra,
    list(generated = as.character(Sys.Date()), notes = notes))
}

## Write a fixture.  digits = NA gives 15 significant digits, length-1
## vectors become scalars (wrap a value in I() to keep it an array), NULL and
## NA become null, and data frames are written column-wise.
write_fixture <- function(out, path, pretty = FALSE) {
  dir.create(dirname(path), showWarnings = FALSE, recursive = TRUE)
  write_json(out, path, auto_unbox = TRUE, digits = NA, pretty = pretty,
             null = "null", na = "null", dataframe = "columns")
  cat(sprintf("Wrote %d cases to %s (%.1f KB)\n", length(out$cases), path,
              file.info(path)$size / 1024))
  invisible(path)
}
