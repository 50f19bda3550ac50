"""The documentation in the repository: a short README, links that resolve, no citation of a missing file,
the LICENSE pyproject declares, and a page in docs/stages/ for every registered stage."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_LINES = 260
# sha256 of the Apache License 2.0 text as www.apache.org/licenses/LICENSE-2.0.txt serves it (202 lines).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
# Folders that hold outputs, caches or other people's files, never project text.
SKIP_DIRS = {"build", "dist", "node_modules", "__pycache__", "mt_bench"}
SKIP_PREFIXES = ("registry", "runs", ".")
CITING_SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".md"}
# A file name that is not a citation: the folder an export writes (camelid.hf.export's docstring).
NOT_CITATIONS = {"DIR/README.md"}

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MD_NAME = re.compile(r"(?<![\w./<>-])([\w./-]*\w\.md)\b")
URL = re.compile(r"https?://\S+")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def project_files() -> list[Path]:
    """The repository's own text files that may cite others: *.py, *.toml, *.yaml, *.md and the Makefile."""
    out = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if any(p in SKIP_DIRS or p.startswith(SKIP_PREFIXES) or p.endswith(".egg-info") for p in rel.parts[:-1]):
            continue
        if path.is_file() and (path.suffix in CITING_SUFFIXES or path.name == "Makefile"):
            out.append(path)
    return out


def prose(text: str) -> str:
    """Markdown without code blocks and inline code: what a reader follows links in."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_readme_is_a_short_guide():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, at most {README_MAX_LINES}: move reference material and measurements "
        "to docs/ (docs/index.md lists the pages) and link them")


def test_readme_gives_the_test_command_ci_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in readme.split("## ", 2)[1], "the README's first section gives `make test`"
    assert re.search(r"^make test$", ci, re.M), ".ci/run must run the README's test command, `make test`"
    assert "make demo " in readme.split("## ", 2)[1]


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: {dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: {dest.name} has no heading with the anchor #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: broken links:\n  " + "\n  ".join(broken)


def test_no_file_cites_a_missing_markdown_file():
    """DESIGN.md and the like lived outside the repository: a docstring or comment must cite a page that is here."""
    me = Path(__file__).resolve()
    missing = []
    for path in project_files():
        if path.resolve() == me:
            continue
        text = URL.sub("", path.read_text(encoding="utf-8", errors="replace"))
        if path.suffix == ".md":  # a link's text names its target, which test_relative_links_resolve checks
            text = LINK.sub("", text)
        for lineno, line in enumerate(text.splitlines(), 1):
            for name in MD_NAME.findall(line):
                if name in NOT_CITATIONS:
                    continue
                if not any((base / name).is_file() for base in (path.parent, REPO)):
                    missing.append(f"{path.relative_to(REPO)}:{lineno}: {name}")
    assert not missing, ("these cite a .md file that is not in the repository (cite the docs/ page that holds "
                         "it, e.g. docs/design.md):\n  " + "\n  ".join(missing))


def test_license_is_the_apache_2_text_pyproject_declares():
    license_file = REPO / "LICENSE"
    assert license_file.is_file(), "LICENSE is missing"
    text = license_file.read_bytes()
    assert b"Apache License" in text and b"Version 2.0, January 2004" in text
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256, "LICENSE is not the unmodified Apache 2.0 text"
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on Python 3.10
    assert re.search(r'^license = "Apache-2.0"$', pyproject.split("[project]", 1)[1].split("\n[", 1)[0], re.M)


def documented_stages() -> dict[str, Path]:
    """Stage name -> its page: docs/stages/<name>.md, plus the names a page lists in its first line
    (``<!-- stages: a, b -->``) for stages it documents under another name."""
    out = {}
    for page in sorted((DOCS / "stages").glob("*.md")):
        out[page.stem] = page
        first = page.read_text(encoding="utf-8").split("\n", 1)[0]
        m = re.fullmatch(r"<!--\s*stages:\s*(.*?)\s*-->", first.strip())
        for name in (m.group(1).split(",") if m else []):
            out.setdefault(name.strip(), page)
    return out


def test_every_registered_stage_has_a_page():
    from camelid.stages import STAGES

    pages = documented_stages()
    undocumented = [name for name in STAGES if name not in pages]
    assert not undocumented, (
        f"no page in docs/stages/ for stage(s) {', '.join(undocumented)}: write docs/stages/<name>.md (what it "
        "does, inputs and outputs with their kinds, every config key with its default, commands, resume, what it "
        "measures; see docs/design.md#adding-a-stage)")


def test_every_config_key_is_on_its_stage_page():
    """A stage page's config table is derived from its config model: a key added to the model must appear there."""
    from camelid.config import load_config
    from camelid.stages import STAGES, get_stage

    cfg = load_config(REPO / "pipelines.yaml")
    pages = documented_stages()
    missing = []
    for name in STAGES:
        stage = get_stage(name)
        if stage.config_model is None or name not in pages:  # no section (init's toy_base is core's), or no page
            continue
        text = pages[name].read_text(encoding="utf-8")
        for key in type(stage.section_of(cfg)).model_fields:
            if not re.search(rf"`(?:[\w.]+\.)?{re.escape(key)}[`.:=\s]", text):
                missing.append(f"{pages[name].relative_to(REPO)}: {key}")
    assert not missing, ("config keys missing from their stage page (add them to its configuration table, with "
                         "the default and the help text of the config model):\n  " + "\n  ".join(missing))


def test_readme_lists_the_commands_camelid_help_lists(capsys):
    """Every command in the README's command list is one of `camelid --help`'s, with its help line, in its order. The
    README may leave a command out (a new stage needs no README edit: its page in docs/stages is what is required)."""
    from camelid.cli import main

    assert main(["--help"]) == 0
    usage = capsys.readouterr().out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    listed = [line.split(None, 1) for line in usage.splitlines()]
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("## The commands", 1)[1].split("```", 2)[1]
    in_readme = [line.split(None, 2)[1:] for line in readme.strip().splitlines()]
    assert in_readme and all(entry in listed for entry in in_readme), (
        "README.md's '## The commands' block lists a command or help line `camelid --help` does not:\n" + usage)
    order = [listed.index(entry) for entry in in_readme]
    assert order == sorted(order), "README.md's '## The commands' block must keep `camelid --help`'s order"


def test_paths_the_docs_name_exist():
    """A file or folder of the repository named in inline code (`sft/recipe.py`, `configs/fsdp.yaml`) exists: when
    code moves, the pages that point at it say so."""
    folders = {p.name for p in REPO.iterdir() if p.is_dir() and p.name not in SKIP_DIRS
               and not p.name.startswith(SKIP_PREFIXES) and not p.name.endswith(".egg-info")}
    path = re.compile(r"[\w.-]+(?:/[\w.-]+)*(?:\.(?:py|md|yaml|toml|json|jsonl|sh|js|html|css)|/)")
    missing = []
    for page in markdown_files():
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for span in re.findall(r"`([^`\n]+)`", text):
            parts = span.rstrip("/").split("/")
            if path.fullmatch(span) and len(parts) > 1 and parts[0] in folders and not (REPO / span).exists():
                missing.append(f"{page.relative_to(REPO)}: {span}")
    assert not missing, "the docs name files that are not in the repository (moved?):\n  " + "\n  ".join(missing)
