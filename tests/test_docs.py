"""The manual stays honest: README.md and docs/*.md are checked against the repository and the CLI.

1. Every relative link (``[text](path)``, ``[text](path#anchor)``, images, ``[ref]: path``
   definitions; http(s):// and mailto: links are left alone) resolves to an existing file or folder,
   and an ``#anchor`` into a Markdown file names one of its headings, slugged as GitHub does
   (lower case, spaces to hyphens, punctuation dropped, ``-1``, ``-2`` ... for repeats).
2. Every ``lgseg <command>`` shown in code (fenced or indented blocks and inline code spans) is a
   command of ``lgseg.cli.build_parser()``, and every ``--option`` written after it on the same
   command line is an option of that command. Placeholders are upper case (``lgseg COMMAND -h``)
   and are not commands.
3. Every page under docs/ starts with its ``# Title`` and, on the next line that is not blank, says
   what it answers: ``What this page answers: ...``.

Links inside code are not links, and words in prose are not commands: only code is read for (2).
"""

from __future__ import annotations

import argparse
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LEAD_IN = "What this page answers:"

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+.*)?$", re.M)
_EXTERNAL = ("http://", "https://", "mailto:")
# `lgseg <command>` in code: the program name (alone or at the end of a path such as .venv/bin/lgseg),
# not a module (lgseg.cli), not a folder (lgseg/), not a Python import
_COMMAND = re.compile(r"(?<![\w.-])(?<!from )(?<!import )lgseg[ \t]+([a-z][a-z0-9-]*)")
_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
_END_OF_COMMAND = re.compile(r"\s#|&&|\|\||;|\|")


@dataclass
class Page:
    """A Markdown file split into what the checks read: prose with code blanked out (same offsets,
    so line numbers hold), its code (text, first line), its headings and their GitHub slugs."""

    path: Path
    prose: str = ""
    code: list[tuple[str, int]] = field(default_factory=list)
    headings: list[tuple[str, int]] = field(default_factory=list)

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix() if self.path.is_relative_to(ROOT) else str(self.path)

    def line_of(self, offset: int) -> int:
        return self.prose.count("\n", 0, offset) + 1

    def slugs(self) -> set[str]:
        seen: dict[str, int] = {}
        out = set()
        for text, _ in self.headings:
            s = slug(text)
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
        return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text, lower case, every character that is not a
    letter, digit, underscore, hyphen or space dropped, then each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def parse(path: Path, text: str | None = None) -> Page:
    text = path.read_text(encoding="utf-8") if text is None else text
    lines = text.split("\n")
    page = Page(path)
    masked = list(lines)
    # fenced blocks: code; their lines leave the prose
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group(1), i
        close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            i += 1
        page.code.append(("\n".join(lines[start + 1:i]), start + 2))
        for k in range(start, min(i + 1, len(lines))):
            masked[k] = ""
        i += 1
    # paragraphs of the rest: indented code blocks, headings, inline code spans
    blocks, current = [], []
    for n, line in enumerate(masked):
        if line.strip():
            current.append(n)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    for block in blocks:
        if all(masked[n].startswith(("    ", "\t")) for n in block):
            page.code.append(("\n".join(masked[n].strip() for n in block), block[0] + 1))
            for n in block:
                masked[n] = ""
            continue
        for n in block:
            h = _HEADING.match(masked[n])
            if h:
                page.headings.append((h.group(2), n + 1))
        para = "\n".join(masked[n] for n in block)
        para_masked = para
        for s in _SPAN.finditer(para):
            page.code.append((s.group(2).replace("\n", " "), block[0] + 1 + para.count("\n", 0, s.start())))
            blank = re.sub(r"[^\n]", " ", s.group(0))
            para_masked = para_masked[:s.start()] + blank + para_masked[s.end():]
        for k, line in zip(block, para_masked.split("\n")):
            masked[k] = line
    page.prose = "\n".join(masked)
    return page


def _targets(page: Page):
    """(target as written, line) of every link and link definition in the page's prose."""
    for m in _LINK.finditer(page.prose):
        yield m.group(1), page.line_of(m.start())
    for m in _DEFINITION.finditer(page.prose):
        yield m.group(1), page.line_of(m.start())


def broken_links(page: Page, pages: dict[Path, Page] | None = None) -> list[str]:
    pages = pages if pages is not None else {}
    bad = []
    for target, line in _targets(page):
        if not target or target.startswith(_EXTERNAL):
            continue
        raw_path, _, anchor = target.partition("#")
        path = urllib.parse.unquote(raw_path)
        where = f"{page.rel}:{line}: ({target})"
        if path:
            dest = (page.path.parent / path).resolve()
            if not dest.exists():
                bad.append(f"{where} -> {dest} does not exist")
                continue
            if not (anchor and dest.suffix == ".md" and dest.is_file()):
                continue  # a file or folder; anchors are checked in Markdown files only
            other = pages.get(dest) or parse(dest)
        elif anchor:
            other = page  # a heading of this page
        else:
            continue
        slugs = other.slugs()
        if urllib.parse.unquote(anchor).lower() not in slugs:
            words = set(anchor.lower().split("-"))
            near = sorted(slugs, key=lambda s: (-len(set(s.split("-")) & words), s))[:3]
            bad.append(f"{where} -> no heading '#{anchor}' in {other.rel}"
                       f" (nearest: {', '.join('#' + s for s in near) or 'the page has no headings'})")
    return bad


def cli_commands() -> dict[str, set[str]]:
    """Each subcommand of ``lgseg`` -> its option strings."""
    from lgseg.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {s for a in p._actions for s in a.option_strings} for name, p in sub.choices.items()}


def _command_lines(code: str):
    """Logical lines of a code text: a line ending in a backslash continues on the next."""
    return re.sub(r"\\[ \t]*\n", " ", code).split("\n")


def bad_commands(page: Page, commands: dict[str, set[str]]) -> list[str]:
    bad = []
    for code, first_line in page.code:
        for offset, line in enumerate(_command_lines(code)):
            matches = list(_COMMAND.finditer(line))
            for i, m in enumerate(matches):
                where = f"{page.rel}:{first_line + offset}"
                name = m.group(1)
                if name not in commands:
                    bad.append(f"{where}: `lgseg {name}` is not a command (lgseg has: {', '.join(sorted(commands))})")
                    continue
                rest = line[m.end(): matches[i + 1].start() if i + 1 < len(matches) else len(line)]
                end = _END_OF_COMMAND.search(rest)
                rest = rest[: end.start()] if end else rest
                for opt in _OPTION.findall(rest):
                    if f"--{opt}" not in commands[name]:
                        known = sorted(o for o in commands[name] if o.startswith("--"))
                        bad.append(f"{where}: `lgseg {name}` has no option --{opt} (its options: {', '.join(known)})")
    return bad


def missing_lead_in(page: Page) -> list[str]:
    lines = [(n, line) for n, line in enumerate(page.path.read_text(encoding="utf-8").split("\n"), 1)
             if line.strip()]
    if not lines or not lines[0][1].startswith("# "):
        return [f"{page.rel}:1: the page does not start with a '# Title' line"]
    if len(lines) < 2 or not lines[1][1].startswith(LEAD_IN):
        n = lines[1][0] if len(lines) > 1 else lines[0][0]
        return [f"{page.rel}:{n}: the line after the title does not start with {LEAD_IN!r}"]
    return []


# ---- the checks --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parsed() -> dict[Path, Page]:
    return {p.resolve(): parse(p) for p in PAGES}


@pytest.fixture(scope="module")
def commands() -> dict[str, set[str]]:
    return cli_commands()


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", PAGES, ids=_id)
def test_every_relative_link_resolves(path, parsed):
    bad = broken_links(parsed[path.resolve()], parsed)
    assert not bad, f"{len(bad)} broken link(s):\n" + "\n".join(bad)


@pytest.mark.parametrize("path", PAGES, ids=_id)
def test_every_lgseg_command_shown_exists_with_its_options(path, parsed, commands):
    bad = bad_commands(parsed[path.resolve()], commands)
    assert not bad, f"{len(bad)} unknown command(s) or option(s):\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.md")), ids=_id)
def test_every_docs_page_says_first_what_it_answers(path, parsed):
    bad = missing_lead_in(parsed[path.resolve()])
    assert not bad, "\n".join(bad)


def test_the_pages_exist():  # a moved folder must not make the checks above check nothing
    assert (ROOT / "README.md").is_file() and len(PAGES) > 1


# ---- the checks can fail -----------------------------------------------------------------------

SAMPLE = """# Sample

What this page answers: nothing.

## A heading, with `code` (and punctuation)!
## Repeated
## Repeated

See [here](#a-heading-with-code-and-punctuation), [again](#repeated-1), [gone](#nowhere),
[a file](missing.md), ![a picture](gone.png), [web](https://example.org/x) and `[not a link](nope.md)`.

[ref]: also-missing.md

```sh
lgseg evaluate --pred p/ --gt g/ --out m.json   # then: lgseg frobnicate
python -c "from lgseg import cli"; .venv/bin/lgseg --help
```

Run `lgseg predict --checkpoint m.pt --nonsense 1` or `lgseg COMMAND -h`; in prose lgseg render is no code.

    lgseg export-gt --raw DIR --out gt/ \\
        --split val --bogus
"""


@pytest.fixture
def sample() -> Page:
    return parse(DOCS / "_sample_for_test.md", SAMPLE)  # its links resolve against docs/; never written


def test_slugs_follow_github():
    assert slug("Using a folder that is already preprocessed (Pointcept's, or lgseg's)") == \
        "using-a-folder-that-is-already-preprocessed-pointcepts-or-lgsegs"
    assert slug("`params.yaml` and its schema") == "paramsyaml-and-its-schema"
    assert slug("bench_gpu.py") == "bench_gpupy"
    assert slug("Seeds -- and rules") == "seeds----and-rules"


def test_the_link_check_finds_broken_links_and_anchors(sample):
    bad = broken_links(sample)
    assert len(bad) == 4, bad
    assert any("#nowhere" in b for b in bad) and any("missing.md" in b for b in bad)
    assert any("gone.png" in b for b in bad) and any("also-missing.md" in b for b in bad)
    assert not any("nope.md" in b or "example.org" in b for b in bad)


def test_the_command_check_finds_unknown_commands_and_options(sample):
    commands = {"evaluate": {"--pred", "--gt", "--out"}, "predict": {"--checkpoint"},
                "export-gt": {"--raw", "--out", "--split"}}
    bad = bad_commands(sample, commands)
    assert len(bad) == 3, bad
    assert any("lgseg frobnicate" in b for b in bad)
    assert any("--nonsense" in b for b in bad) and any("--bogus" in b for b in bad)


def test_the_lead_in_check_finds_a_page_without_one(tmp_path):
    (tmp_path / "without.md").write_text("# Title\n\nSome text.\n")
    (tmp_path / "untitled.md").write_text(f"{LEAD_IN} this.\n")
    (tmp_path / "with.md").write_text(f"# Title\n\n{LEAD_IN} this.\n")
    assert missing_lead_in(Page(tmp_path / "without.md")) and missing_lead_in(Page(tmp_path / "untitled.md"))
    assert missing_lead_in(Page(tmp_path / "with.md")) == []
