"""The examples in README.md and docs/*.md run and print what the pages say."""

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path) -> list[str]:
    """Fenced ```python blocks that hold ``>>>`` examples, in page order."""
    blocks, current, lang = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                if lang in ("python", "pycon") and any(x.startswith(">>>") for x in current):
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


PAGES = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if _blocks(p)]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_examples(path, capsys):
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs: dict = {}
    report: list[str] = []
    for i, block in enumerate(_blocks(path)):
        test = parser.get_doctest(block, globs, f"{path.name}[{i}]", str(path), 0)
        runner.run(test, out=report.append, clear_globs=False)
        globs = test.globs  # later blocks of a page use the names of earlier ones
    assert runner.failures == 0, "".join(report)
    assert runner.tries > 0


def test_pages_have_examples():
    assert {p.name for p in PAGES} >= {"README.md", "noise.md", "theory.md"}
