"""Keeps the docs' result tables equal to the results files the experiments write.

A page in docs/ (or README.md) never copies a number from experiments/results/ by hand. It marks
where a results file goes:

    <!-- include: experiments/results/bench-dcgan-amd.md -->
    ...the file's text, written here by this script...
    <!-- end include -->

Every script that writes a results file calls `write_result`, which writes the file and then
rewrites every include block that names it, so a rerun cannot leave a stale number on a page.
`python experiments/docs_sync.py` rewrites all blocks; `--check` only reports stale ones and exits 1
(tests/test_docs.py runs the same check in CI).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The pages that may include results: the front page and everything under docs/.
PAGE_GLOBS = ("README.md", "docs/**/*.md", "experiments/README.md")
INCLUDE = re.compile(r"(?P<open><!-- include: (?P<path>\S+) -->\n)(?P<body>.*?)(?P<close><!-- end include -->)", re.S)


def pages(root: Path = ROOT) -> list[Path]:
    return sorted({page for pattern in PAGE_GLOBS for page in root.glob(pattern)})


# A results file's headings start at "#"; inside a page they sit under its own sections, so they are
# demoted by this many levels ("# Title" -> "### Title").
DEMOTE = 2


def demoted(text: str) -> str:
    """The text with every heading outside code fences DEMOTE levels deeper."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" * DEMOTE + line if not fenced and re.match(r"#{1,4} ", line) else line)
    return "\n".join(lines) + "\n"


# A relative link or image in markdown: ](target) where target is no URL and no in-page anchor.
RELATIVE_LINK = re.compile(r"\]\((?![a-z]+:|#|/)([^)\s]+)\)")


def rebased(text: str, source_dir: Path, page_dir: Path) -> str:
    """`text`'s relative links, written from `source_dir`, rewritten to reach the same files from `page_dir`."""
    return RELATIVE_LINK.sub(lambda m: "](" + os.path.relpath(os.path.normpath(source_dir / m[1]), page_dir) + ")", text)


def included_text(root: Path, name: str, page: Path | None = None) -> str:
    """What a block naming `name` (a path from the repository root) holds: the file, its headings
    demoted and its relative links rewritten to work from `page` (the page holding the block)."""
    path = root / name
    if not path.is_file():
        raise FileNotFoundError(f"an include block names {name}, which does not exist")
    text = demoted(path.read_text())
    return rebased(text, path.parent, page.parent) if page is not None else text


def synced(root: Path, page_text: str, page: Path | None = None) -> str:
    """The page with every include block holding its file's current text."""
    return INCLUDE.sub(lambda m: m["open"] + included_text(root, m["path"], page) + m["close"], page_text)


def stale_pages(root: Path = ROOT) -> list[Path]:
    """Pages whose include blocks differ from the files they name."""
    return [page for page in pages(root) if synced(root, page.read_text(), page) != page.read_text()]


def sync(root: Path = ROOT) -> list[Path]:
    """Rewrites every stale page; returns the pages it changed."""
    changed = stale_pages(root)
    for page in changed:
        page.write_text(synced(root, page.read_text(), page))
    return changed


def update_kept(path: Path, change) -> dict:
    """Read the kept-results JSON at `path` ({} if none), apply `change(kept)` (in place) and write it back
    atomically, holding a lock meanwhile (in experiments/out/, never committed), so experiments running
    at once on this machine (a study's shards, say) do not lose each other's results. Returns it."""
    import json

    from gan_lab import files

    locks = ROOT / "experiments" / "out" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with files.holding_lock(files.open_lock(locks / f"{path.name}.lock")):
        kept = json.loads(path.read_text()) if path.exists() else {}
        change(kept)
        files.replace_atomically(path, json.dumps(kept, indent=1, sort_keys=True) + "\n")
    return kept


def write_result(path: Path, text: str) -> None:
    """Write a results file, then bring every page that includes it up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for page in sync():
        print(f"updated {page.relative_to(ROOT)} from {path.name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale pages and exit 1; change nothing")
    args = parser.parse_args()
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"stale: {page.relative_to(ROOT)} (run python experiments/docs_sync.py)")
        return 1 if stale else 0
    for page in sync():
        print(f"updated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
