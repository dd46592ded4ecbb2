#!/usr/bin/env Rscript
## ---------------------------------------------------------------------------
## Reference fixture: the replicate perturbation factors that
## survey::as.svrepdesign() builds from a Taylor design (svydesign), for
## JK1, JKn, BRR and Fay.  A Python reimplementation of the weight
## construction must reproduce these factors exactly.
##
## Run from the repository root:
##     Rscript tests/parity/r/survey_replicate_weights.R
## Output:
##     tests/parity/fixtures/survey_replicate_weights.json
##
## Each case stores the n x R factor matrix (as.svrepdesign(compress = FALSE),
## rows in data-set order), R's scale and rscales, the stratum of each JKn
## replicate, and svymean(~y) on the replicate design as an end-to-end check.
##
## The script also re-derives every factor matrix (and the Hadamard matrix
## for 1..300 strata) from the written rules in tests/parity/r/README.md,
## using only the four Hadamard matrices that `survey` stores as data.  It
## stops if any re-derived value differs from R's.
## ---------------------------------------------------------------------------

if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")

script_path <- "tests/parity/r/survey_replicate_weights.R"
out_path <- "tests/parity/fixtures/survey_replicate_weights.json"

set.seed(20240927)

## ---------------------------------------------------------------------------
## Helpers
## ---------------------------------------------------------------------------

## Unit-level columns for m rows of one PSU: w ~ U(1, 25), y continuous.
unit_rows <- function(m, eff) {
  data.frame(w = round(runif(m, 1, 25), 3),
             y = round(50 + eff + rnorm(m, 0, 4), 4))
}

## Stratified clustered data.  n_psu[h] PSUs in stratum labels[h]; PSU j of
## stratum h has a globally unique label psu_label(h, j) and a nested label
## j; rows per PSU drawn from `rows`.  Rows come sorted by stratum and PSU.
make_data <- function(n_psu, labels = seq_along(n_psu), rows = 1:3,
                      psu_label = function(h, j) 10L * h + j) {
  out <- vector("list", sum(n_psu))
  k <- 0L
  for (h in seq_along(n_psu)) {
    se <- rnorm(1, 0, 4)
    for (j in seq_len(n_psu[h])) {
      m <- if (length(rows) == 1) rows else sample(rows, 1)
      k <- k + 1L
      out[[k]] <- cbind(
        data.frame(stratum = rep(labels[h], m),
                   psu = rep(psu_label(h, j), m),
                   psu_nest = rep(j, m)),
        unit_rows(m, se + rnorm(1, 0, 2)))
    }
  }
  d <- do.call(rbind, out)
  rownames(d) <- NULL
  d
}

shuffle_rows <- function(d) {
  d <- d[sample.int(nrow(d)), , drop = FALSE]
  rownames(d) <- NULL
  d
}

## ---------------------------------------------------------------------------
## Independent re-derivation of the construction (README rules).  Nothing
## below calls survey's weight or Hadamard code; only the four stored
## matrices (survey:::hadamard.list, orders 4, 16, 28, 36) are taken as data.
## ---------------------------------------------------------------------------

stored <- survey:::hadamard.list
stored_orders <- c(4L, 16L, 28L, 36L)
stopifnot(identical(as.integer(vapply(stored, nrow, 1L)), stored_orders),
          identical(as.integer(survey:::hadamard.sizes), stored_orders))
stored <- lapply(stored, function(M) { storage.mode(M) <- "integer"; unname(M) })
names(stored) <- as.character(stored_orders)

is_prime <- function(x) {
  if (x < 4) return(x >= 2)
  all(x %% 2:floor(sqrt(x)) != 0)
}
## Primes p = 3 (mod 4) with 3 <= p <= 7919 (the list used by paley()).
paley_primes <- Filter(function(x) x %% 4 == 3 && is_prime(x), 3:7919)

## Sylvester matrix of order 2^k in 0/1 coding: entry (i, j), 0-based, is 1
## when bitwAnd(i, j) has an even number of set bits.
rule_sylvester <- function(order) {
  idx <- 0:(order - 1)
  a <- as.vector(outer(idx, idx, bitwAnd))   # column-major, like the matrix
  par <- integer(order * order)
  while (any(a > 0)) {
    par <- bitwXor(par, bitwAnd(a, 1L))
    a <- bitwShiftR(a, 1L)
  }
  matrix(1L - par, order, order)
}

## One doubling step: [[A, A], [A, 1 - A]].
rule_double <- function(A, times) {
  for (t in seq_len(times)) A <- rbind(cbind(A, A), cbind(A, 1L - A))
  A
}

## Paley-type matrix of order p + 1: first row and first column all 1; the
## core entry (i, j), 0-based, is 0 when (i + j) mod p is 0 or a quadratic
## residue mod p, otherwise 1.
rule_paley <- function(p) {
  qr <- unique(((1:(p - 1))^2) %% p)
  s <- outer(0:(p - 1), 0:(p - 1), "+") %% p
  core <- ifelse(s == 0 | s %in% qr, 0L, 1L)
  dim(core) <- c(p, p)
  rbind(rep(1L, p + 1), cbind(1L, core))
}

## R's Paley search for n strata with an upper bound nmax on the order.
## Returns list(M, label) or NULL.
rule_paley_search <- function(n, nmax) {
  nceil <- 4 * (n %/% 4) + 4
  if (n %% 8 >= 4) {
    q <- nceil
    while (q %% 8 == 0) q <- q / 2
    if ((q - 1) %in% paley_primes) {
      k <- as.integer(round(log2(nceil / q)))
      return(list(M = rule_double(rule_paley(q - 1), k),
                  label = sprintf("paley(%d)x2^%d", q - 1, k)))
    }
  }
  if (n > max(paley_primes)) return(NULL)
  p <- min(paley_primes[paley_primes >= n])
  if (p + 1 > nceil + 4 && nceil + 4 < nmax) {
    return(rule_paley_search(nceil + 3, 2 * (nceil + 3)))
  }
  if (p > nmax) return(NULL)
  list(M = rule_paley(p), label = sprintf("paley(%d)", p))
}

## The Hadamard matrix used for n strata.  Returns list(M, label).
rule_hadamard <- function(n) {
  nceil <- 4 * (n %/% 4) + 4
  if (nceil %in% stored_orders) {
    return(list(M = stored[[as.character(nceil)]], label = sprintf("stored(%d)", nceil)))
  }
  ## smallest base * 2^k >= n + 1 for each stored base
  k <- vapply(stored_orders, function(b) {
    k <- 0L
    while (b * 2^k < n + 1) k <- k + 1L
    k
  }, 0L)
  cand <- stored_orders * 2^k
  best <- which(cand == min(cand))[1]
  if (cand[best] - n > 4) {
    P <- rule_paley_search(n, cand[best])
    if (!is.null(P)) return(P)
  }
  list(M = rule_double(stored[[best]], k[best]),
       label = sprintf("stored(%d)x2^%d", stored_orders[best], k[best]))
}

## C-locale (code point) sort of the stratum labels, as characters.
sorted_labels <- function(x) sort(unique(as.character(x)), method = "radix")

## BRR / Fay factors (rho = 0 for BRR).
rule_brr <- function(strata, psu, rho) {
  s <- as.character(strata)
  levs <- sorted_labels(s)
  H <- rule_hadamard(length(levs))$M
  k <- match(s, levs)                          # stratum rank, 1-based
  key <- paste(s, psu, sep = "\r")             # PSU identity within stratum
  first_key <- vapply(levs, function(l) key[match(l, s)], "")
  is_first <- key == first_key[k]              # first-appearing PSU of its stratum
  n_psu_h <- vapply(levs, function(l) length(unique(key[s == l])), 0L)
  stopifnot(all(n_psu_h == 2))
  sgn <- ifelse(H[k + 1, , drop = FALSE] == 1L, 1, -1)
  sgn <- sgn * ifelse(is_first, 1, -1)
  ## 1 + (1 - rho) * sgn, but written as R computes it: exactly 2 - rho or
  ## rho (1 - 0.7 is not the double 0.3)
  ifelse(sgn > 0, 2 - rho, rho)
}

## JK1 (strata = NULL) / JKn factors, scale, rscales and replicate strata.
rule_jk <- function(strata, psu, fpc_n = NULL) {
  n <- length(psu)
  if (is.null(strata)) strata <- rep(1L, n)
  s_order <- unique(strata)                    # first appearance
  cols <- list(); rsc <- numeric(0); rstr <- s_order[0]
  for (s in s_order) {
    in_s <- strata == s
    key <- psu[in_s]
    units <- unique(key)                       # first appearance in stratum
    nh <- length(units)
    fh <- if (is.null(fpc_n)) 1 else {
      Nh <- fpc_n[in_s][1]
      (Nh - nh) / Nh
    }
    for (u in units) {
      f <- rep(1, n)
      f[in_s] <- ifelse(key == u, 0, nh / (nh - 1))
      cols[[length(cols) + 1]] <- f
      rsc <- c(rsc, fh * (nh - 1) / nh)
      rstr <- c(rstr, s)
    }
  }
  F <- do.call(cbind, cols)
  if (length(s_order) == 1) {
    list(factors = F, scale = rsc[1], rscales = rep(1, ncol(F)), rstrata = NULL)
  } else {
    list(factors = F, scale = 1, rscales = rsc, rstrata = rstr)
  }
}

## ---------------------------------------------------------------------------
## Check the Hadamard rule against survey::hadamard() for 1..300 strata.
## ---------------------------------------------------------------------------
stopifnot(identical(stored[["4"]], rule_sylvester(4L)),
          identical(stored[["16"]], rule_sylvester(16L)))
hadamard_selection <- list()
for (n in 1:300) {
  Rm <- survey::hadamard(n)
  mine <- rule_hadamard(n)
  if (!identical(dim(Rm), dim(mine$M)) || any(Rm != mine$M)) {
    stop("Hadamard rule differs from survey::hadamard for n = ", n)
  }
  if (!is.hadamard(Rm)) stop("survey::hadamard(", n, ") is not Hadamard")
  hadamard_selection[[length(hadamard_selection) + 1]] <-
    list(n_strata = n, order = nrow(Rm), construction = mine$label)
}

## ---------------------------------------------------------------------------
## Cases
## ---------------------------------------------------------------------------
datasets <- list()

add_dataset <- function(name, d) {
  if (!is.null(datasets[[name]])) stop("Duplicate data set: ", name)
  datasets[[name]] <<- json_roundtrip(d)
}

add_case <- function(id, dataset, design, type, rho = NULL) {
  d <- datasets[[dataset]]
  des <- no_warn(make_design(design, d), id)
  rep <- no_warn(as.svrepdesign(des, type = type,
                                fay.rho = if (is.null(rho)) 0 else rho,
                                compress = FALSE), id)
  stopifnot(rep$type == type)
  F <- unname(rep_factors(rep))
  storage.mode(F) <- "double"
  stopifnot(nrow(F) == nrow(d))
  R <- ncol(F)

  ## Re-derive from the written rules; stop on any difference.
  rstrata <- NULL
  hinfo <- NULL
  if (type %in% c("BRR", "Fay")) {
    G <- rule_brr(d[[design$strata]], d[[design$psu]], if (is.null(rho)) 0 else rho)
    exp_scale <- 1 / (R * (1 - if (is.null(rho)) 0 else rho)^2)
    exp_rscales <- rep(1, R)
    hinfo <- rule_hadamard(length(unique(d[[design$strata]])))
  } else {
    J <- rule_jk(if (type == "JKn") d[[design$strata]] else NULL,
                 d[[design$psu]], if (is.null(design$fpc)) NULL else d[[design$fpc]])
    G <- J$factors
    exp_scale <- J$scale
    exp_rscales <- J$rscales
    rstrata <- J$rstrata
  }
  if (!identical(dim(G), dim(F)) || any(G != F)) {
    stop("Re-derived factors differ from as.svrepdesign for case ", id)
  }
  if (!identical(as.numeric(rep$scale), as.numeric(exp_scale)) ||
      !identical(as.numeric(rep$rscales), as.numeric(exp_rscales))) {
    stop("Re-derived scale/rscales differ from as.svrepdesign for case ", id)
  }
  if (!is.null(rstrata)) {
    ## the stratum of the PSU with factor 0 in each replicate
    for (r in seq_len(R)) {
      stopifnot(identical(unique(d[[design$strata]][F[, r] == 0]), rstrata[r]))
    }
  }

  m <- no_warn(svymean(~y, rep), id)
  push_case(list(
    id = id,
    dataset = dataset,
    design = design,
    type = type,
    fay_rho = rho,
    factors = F,
    scale = rep$scale,
    rscales = I(as.numeric(rep$rscales)),
    n_replicates = R,
    replicate_strata = if (is.null(rstrata)) NULL else I(rstrata),
    hadamard_order = if (is.null(hinfo)) NULL else nrow(hinfo$M),
    hadamard_construction = if (is.null(hinfo)) NULL else hinfo$label,
    mean_y = list(estimate = unname(coef(m))[1], se = unname(SE(m))[1])
  ))
}

kw <- function(...) Filter(Negate(is.null), list(weights = "w", ...))

## ---- JK1: 12 PSUs, no strata; population of 60 PSUs for the fpc case. ----
local({
  d <- make_data(12L, labels = 1L, rows = 1:4,
                 psu_label = function(h, j) 100L + j)
  d$stratum <- NULL
  d$psu_nest <- NULL
  d$fpc_n <- 60L
  add_dataset("jk1", d)
  ## rows shuffled: PSU first-appearance order differs from label order
  add_dataset("jk1_shuffled", shuffle_rows(d))
})
add_case("jk1", "jk1", kw(psu = "psu"), "JK1")
add_case("jk1_fpc", "jk1", kw(psu = "psu", fpc = "fpc_n"), "JK1")
add_case("jk1_shuffled", "jk1_shuffled", kw(psu = "psu"), "JK1")
add_case("jk1_shuffled_fpc", "jk1_shuffled", kw(psu = "psu", fpc = "fpc_n"), "JK1")

## ---- JKn: 5 strata with 2, 5, 3, 4, 2 PSUs; fpc_n = population PSUs. ----
local({
  n_psu <- c(2L, 5L, 3L, 4L, 2L)
  N_psu <- c(7L, 12L, 30L, 9L, 5L)
  d <- make_data(n_psu, rows = 1:4)
  d$fpc_n <- N_psu[d$stratum]
  add_dataset("jkn", d)
  ## rows shuffled: strata and PSUs first appear out of label order and the
  ## rows of a PSU are not contiguous
  d2 <- shuffle_rows(d)
  stopifnot(!identical(unique(d2$stratum), sort(unique(d2$stratum))))
  add_dataset("jkn_shuffled", d2)
})
add_case("jkn", "jkn", kw(strata = "stratum", psu = "psu"), "JKn")
add_case("jkn_fpc", "jkn", kw(strata = "stratum", psu = "psu", fpc = "fpc_n"), "JKn")
add_case("jkn_nest", "jkn", kw(strata = "stratum", psu = "psu_nest", nest = TRUE), "JKn")
add_case("jkn_nest_fpc", "jkn",
         kw(strata = "stratum", psu = "psu_nest", fpc = "fpc_n", nest = TRUE), "JKn")
add_case("jkn_shuffled", "jkn_shuffled", kw(strata = "stratum", psu = "psu"), "JKn")
add_case("jkn_shuffled_fpc", "jkn_shuffled",
         kw(strata = "stratum", psu = "psu", fpc = "fpc_n"), "JKn")
add_case("jkn_shuffled_nest", "jkn_shuffled",
         kw(strata = "stratum", psu = "psu_nest", nest = TRUE), "JKn")

## ---- BRR / Fay over many stratum counts H (2 PSUs per stratum). ----
## Stratum labels 101..100+H (3 digits, so label order = numeric order),
## PSU labels 10 * stratum + j; rows sorted by stratum and PSU.
brr_H <- c(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 19, 20, 23, 24,
           25, 27, 28, 31, 32, 35, 36, 40, 44, 47, 48, 52, 56, 60, 63, 64)
brr_kw <- kw(strata = "stratum", psu = "psu")
for (H in brr_H) {
  rows <- if (H <= 24) 1:3 else 1L
  ds <- sprintf("brr_h%02d", H)
  add_dataset(ds, make_data(rep(2L, H), labels = 100L + seq_len(H), rows = rows,
                            psu_label = function(h, j) 10L * (100L + h) + j))
  add_case(sprintf("brr_h%02d", H), ds, brr_kw, "BRR")
  add_case(sprintf("fay05_h%02d", H), ds, brr_kw, "Fay", 0.5)
  add_case(sprintf("fay03_h%02d", H), ds, brr_kw, "Fay", 0.3)
}

## Three more BRR-only cases (1 row per PSU) for Hadamard branches the list
## above does not reach: 68 strata use the stored order-36 matrix doubled
## once; 72 strata use paley(79) (order 80, not 76); 88 strata go through the
## recursive Paley search and end with paley(11) doubled 3 times (order 96).
for (H in c(68, 72, 88)) {
  ds <- sprintf("brr_h%02d", H)
  add_dataset(ds, make_data(rep(2L, H), labels = 100L + seq_len(H), rows = 1L,
                            psu_label = function(h, j) 10L * (100L + h) + j))
  add_case(sprintf("brr_h%02d", H), ds, brr_kw, "BRR")
}

## ---- BRR with unsorted labels. ----
## 11 strata labelled 1..11 (numeric), appearing in scrambled order.  R sorts
## the labels as character strings ("1" < "10" < "11" < "2" < ...), so the
## Hadamard row of a stratum follows neither appearance nor numeric order.
## In each stratum the PSU that appears first has the larger label.
local({
  labs <- sample(1:11)
  stopifnot(!identical(labs, 1:11))
  d <- make_data(rep(2L, 11), labels = labs, rows = 1:2,
                 psu_label = function(h, j) 10L * labs[h] + (3L - j))
  add_dataset("brr_unsorted", d)
  dc <- d
  dc$stratum <- sprintf("s%d", dc$stratum)      # "s1", "s10", "s11", "s2", ...
  dc$psu <- sprintf("p%d", dc$psu)
  add_dataset("brr_unsorted_chr", dc)
})
add_case("brr_unsorted", "brr_unsorted", brr_kw, "BRR")
add_case("fay03_unsorted", "brr_unsorted", brr_kw, "Fay", 0.3)
add_case("brr_unsorted_chr", "brr_unsorted_chr", brr_kw, "BRR")

## ---- BRR with non-contiguous PSU rows (rows shuffled), 9 strata. ----
local({
  d <- make_data(rep(2L, 9), labels = 101:109, rows = 2:3,
                 psu_label = function(h, j) 10L * (100L + h) + j)
  add_dataset("brr_noncontig", shuffle_rows(d))
})
add_case("brr_noncontig", "brr_noncontig", brr_kw, "BRR")
add_case("fay05_noncontig", "brr_noncontig", brr_kw, "Fay", 0.5)
add_case("brr_noncontig_nest", "brr_noncontig",
         kw(strata = "stratum", psu = "psu_nest", nest = TRUE), "BRR")

## ---------------------------------------------------------------------------
## Write
## ---------------------------------------------------------------------------
out <- list(
  meta = fixture_meta(
    script_path,
    extra = list(rtol_factors = 1e-13),
    notes = paste(
      "Perturbation factors from survey::as.svrepdesign(design, type, fay.rho,",
      "compress = FALSE); factors[i][r] is row i (data-set order) in replicate r.",
      "Analysis weight = factor * w.  design = Python SurveyDesign kwargs of the",
      "Taylor design that was converted.  scale/rscales are R's design$scale and",
      "design$rscales; BRR/Fay have scale 1/(R (1 - rho)^2) and rscales 1.",
      "replicate_strata: stratum of the PSU dropped in each JKn replicate.",
      "mean_y = svymean(~y, replicate design) with mse = FALSE.",
      "hadamard: the matrices survey stores as data (0/1 coding, 1 = +1),",
      "keyed by order; 4 and 16 equal the Sylvester rule.  hadamard_selection:",
      "order and construction of survey::hadamard(n) for n = 1..300 strata.",
      "Numbers have 15 significant digits (jsonlite digits = NA), so",
      "n_h/(n_h - 1) and the fpc scales are rounded: compare factors with",
      "rtol_factors, estimates with rtol.  See tests/parity/r/README.md for the",
      "construction rules; the script checks them against R."
    )
  ),
  hadamard = stored,
  hadamard_selection = hadamard_selection,
  datasets = datasets,
  cases = cases
)

write_fixture(out, out_path)
