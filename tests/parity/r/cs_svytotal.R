# Taylor-linearization SE of Callaway-Sant'Anna influence values with R survey.
#
# Input:  tests/parity/fixtures/cs_influence_input.csv, written by
#         tests/parity/r/cs_influence_input.py (mpdta units, a stratified
#         design with nested PSUs and FPC, and diff_diff's unit influence
#         values of the overall ATT for reg, ipw and dr with covariate lpop).
# Output: tests/parity/fixtures/cs_svytotal.json: svytotal(~psi) SE and the
#         design degrees of freedom for each method.
# Run from the repository root:
#   python tests/parity/r/cs_influence_input.py && Rscript tests/parity/r/cs_svytotal.R
if (!file.exists("tests/parity/r/_common.R")) stop("Run this script from the repository root")
source("tests/parity/r/_common.R")  # loads survey and jsonlite; survey.lonely.psu = "remove"
d <- read.csv("tests/parity/fixtures/cs_influence_input.csv")
des <- svydesign(ids = ~psu, strata = ~stratum, fpc = ~fpc, nest = TRUE, weights = ~w, data = d)
cases <- lapply(c("reg", "ipw", "dr"), function(m) {
  # the influence values are already weighted and on the sum scale: total them with unit weights
  des1 <- update(des, one = 1)
  tot <- svytotal(as.formula(paste0("~I(psi_", m, " / w)")), des1)
  list(method = m, total = unname(coef(tot)), se = unname(SE(tot)), df = degf(des))
})
out <- list(
  meta = fixture_meta("tests/parity/r/cs_svytotal.R",
                      notes = "svytotal of psi/w with weights w equals the design total of psi."),
  cases = cases)
write_fixture(out, "tests/parity/fixtures/cs_svytotal.json", pretty = TRUE)
