"""The docs stay true: every relative link and image resolves (anchors too), every file, command and
flag they name exists, their Python runs, the result tables equal the results files, and the front
page's numbers are in the files it cites."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from gan_lab import cli, registry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
import docs_sync  # noqa: E402  (experiments/docs_sync.py: the include blocks)

PAGES = docs_sync.pages(ROOT)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
# A path the pages name in backticks: under one of the repository's own top-level folders.
NAMED_PATH = re.compile(r"`((?:gan_lab|experiments|tests|samples|docs|\.ci)/[^`\s]*)`")
GAN_LAB_COMMAND = re.compile(r"(?:python -m gan_lab|gan-lab)\s+([a-z]+)([^`\n|;&#)]*)")
SCRIPT_COMMAND = re.compile(r"python (experiments/[\w/]+\.py)([^`\n|;&#)]*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def prose(text: str) -> str:
    """The page without its include blocks (a results file is checked by docs_sync, not as prose)."""
    return docs_sync.INCLUDE.sub("", text)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_there_are_pages():
    names = {page_id(page) for page in PAGES}
    assert {"README.md", "docs/README.md", "docs/getting-started.md", "experiments/README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_links_and_images_resolve(page):
    """Prose and included results alike (docs_sync rewrites an included file's links for its page)."""
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http(s):, mailto: - not checked offline
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not broken, f"{page_id(page)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_named_files_exist(page):
    missing = []
    for name in NAMED_PATH.findall(prose(page.read_text())):
        if any(mark in name for mark in "<*{"):  # a pattern (results-<vendor>.md), not a file
            continue
        path = name.split("::")[0].rstrip(".,:")
        if not (ROOT / path).exists():
            missing.append(name)
    assert not missing, f"{page_id(page)} names files that do not exist: {missing}"


def subcommand_flags() -> dict[str, set[str]]:
    """Each gan_lab subcommand's option strings, from the real parser."""
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")  # argparse's subparsers action
    return {name: {option for a in sub._actions for option in a.option_strings}
            for name, sub in action.choices.items()}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_commands_and_flags_exist(page):
    known = subcommand_flags()
    text = prose(page.read_text())
    wrong = []
    for command, rest in GAN_LAB_COMMAND.findall(text):
        if command not in known:
            wrong.append(f"gan_lab {command}")
            continue
        wrong += [f"gan_lab {command} {flag}" for flag in FLAG.findall(rest) if flag not in known[command]]
    for script, rest in SCRIPT_COMMAND.findall(text):
        path = ROOT / script
        if not path.is_file():
            wrong.append(script)
            continue
        source = path.read_text()
        wrong += [f"{script} {flag}" for flag in FLAG.findall(rest) if f'"{flag}"' not in source]
    assert not wrong, f"{page_id(page)} names commands or flags that do not exist: {wrong}"


def test_result_tables_equal_their_files():
    assert docs_sync.stale_pages(ROOT) == [], "run python experiments/docs_sync.py"
    blocks = [m["path"] for page in PAGES for m in docs_sync.INCLUDE.finditer(page.read_text())]
    assert len(blocks) >= 10, blocks  # the pages do include their tables


def test_the_front_page_is_short_and_lists_every_model():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M)
    assert sorted(listed) == sorted(registry.names())


def test_the_front_page_numbers_are_in_the_files_it_cites():
    """Each finding on the front page names its results files; every decimal number in it is in one of them."""
    text = (ROOT / "README.md").read_text()
    findings = text[text.index("## What the lab found"):text.index("## Documentation")]
    bullets = [b for b in re.split(r"\n(?=- )", findings) if b.startswith("- ")]
    assert len(bullets) >= 4
    for bullet in bullets:
        cited = re.findall(r"`(experiments/results/[^`]+\.md)`", bullet)
        if not cited:
            assert not re.search(r"\d\.\d", bullet), f"a finding with numbers cites no results file: {bullet[:80]}"
            continue
        sources = " ".join((ROOT / path).read_text() for path in cited)
        missing = [n for n in re.findall(r"(?<![\w.])\d+\.\d+(?![\d])", bullet) if n not in sources]
        assert not missing, f"{missing} are in none of {cited}"


def python_snippets():
    return [(page, code) for page in PAGES for lang, code in FENCE.findall(page.read_text()) if lang == "python"]


@pytest.mark.parametrize("page, code", python_snippets(), ids=lambda v: page_id(v) if isinstance(v, Path) else "")
def test_python_snippets_run(page, code, data_dir, tmp_path, monkeypatch, capsys):
    """Each Python block runs as written, in a fresh directory, on the real data (in this process: a
    snippet is library code, and the process's start-up would only add time)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_LAB_DATA", str(data_dir))
    exec(compile(code, f"{page_id(page)} (python block)", "exec"), {"__name__": "__docs__"})  # noqa: S102
    assert capsys.readouterr().out  # the blocks print what they show


@pytest.mark.parametrize("script", sorted((ROOT / "experiments").glob("*.py")), ids=lambda path: path.name)
def test_every_experiment_script_at_least_compiles(script):
    """The experiments write the docs' numbers but mostly run outside the suite; a syntax error in one
    (an f-string quote, say) would otherwise surface only when someone reruns it."""
    compile(script.read_text(), str(script), "exec")
