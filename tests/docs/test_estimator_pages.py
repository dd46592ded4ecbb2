"""The per-estimator pages (docs/estimators/*.ipynb): committed without outputs, one per
estimator in the navigation, and every link resolves.

mkdocs does not check links inside notebooks, so this does: ``../../estimators/#anchor``
must be a heading of docs/estimators.md, ``../../api/estimators/#diff_diff.Name`` an
entry of docs/api/estimators.md, ``../page/`` another estimator page.
"""

import json
import re
import unicodedata
from pathlib import Path

import pytest

import diff_diff as dd


def slugify(text: str, separator: str) -> str:
    """The heading anchor MkDocs' table-of-contents extension makes (its default slug:
    ASCII-folded, punctuation dropped, lower case, runs of spaces and hyphens joined by
    ``separator``), so this test needs no docs dependency."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", separator, text)


DOCS = Path(__file__).parents[2] / "docs"
PAGES = sorted((DOCS / "estimators").glob("*.ipynb"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown(page):
    cells = json.loads(page.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_every_estimator_has_a_page_in_the_nav():
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    # the package's estimators (the platform's template example, which other tests
    # register by importing it, is not part of the public surface)
    public = [e for e in dd.estimators.registered() if e.name in dd.__all__]
    assert len(PAGES) >= len(public)
    for page in PAGES:
        assert f"estimators/{page.name}" in nav, page.name
    api = (DOCS / "api" / "estimators.md").read_text()
    text = "\n".join(_markdown(p) for p in PAGES)
    for entry in public:
        assert f"#diff_diff.{entry.name})" in text, entry.name
        assert f"::: diff_diff.{entry.name}\n" in api


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_committed_without_outputs(page):
    for cell in json.loads(page.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_links_resolve(page):
    headings = {slugify(h, "-") for h in re.findall(r"^#+ (.+)$", (DOCS / "estimators.md").read_text(), re.M)}
    api = (DOCS / "api" / "estimators.md").read_text()
    links = LINK.findall(_markdown(page))
    assert links
    for link in links:
        if link.startswith("../../estimators/#"):
            assert link.split("#", 1)[1] in headings, link
        elif link.startswith("../../api/estimators/#diff_diff."):
            assert f"::: {link.split('#', 1)[1]}\n" in api, link
        else:
            assert re.fullmatch(r"\.\./(\w+)/", link), link
            assert (DOCS / "estimators" / f"{link[3:-1]}.ipynb").exists(), link
