"""The README's and docs' relative links, and the repository paths they name in code spans, point at files that
exist (a renamed page, module or bench breaks them unseen)."""

import re

from tests.conftest import ROOT

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REPO_PATH = re.compile(r"`((?:harness|bench|tests|tasks|models|docs|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_])")  # `harness/x.py: f`


def relative_links(md):
    for target in LINK.findall(md.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):  # not a URL, not an anchor on the page
            yield target


def test_every_relative_link_of_the_readme_and_docs_resolves():
    links = [(md, t) for md in PAGES for t in relative_links(md)]
    assert links  # the pattern finds the links there are
    broken = [f"{md.relative_to(ROOT)}: {t}" for md, t in links if not (md.parent / t.split("#")[0]).exists()]
    assert not broken, broken


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("see [the results](results.md#targets), [the web](https://example.org) and [here](#top)\n")
    assert list(relative_links(page)) == ["results.md#targets"]
    assert not (page.parent / "results.md").exists()


def test_every_repository_path_the_readme_and_docs_name_exists():
    named = {(md.relative_to(ROOT), p) for md in PAGES for p in REPO_PATH.findall(md.read_text(encoding="utf-8"))}
    assert len(named) > 50  # the pages name many: the pattern reads them
    missing = sorted(f"{md}: {p}" for md, p in named if not (ROOT / p).exists())
    assert not missing, missing
