"""The docs' marked command blocks: the extractor reads them as a shell would, the marked blocks are where the tests
expect them, and every marker names a test that runs its block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_commands import ROOT, blocks, commands, marked
from test_own_models_doc import STEPS, step_name

OWN_MODELS = ROOT / "docs" / "own-models.md"
SERVING = ROOT / "docs" / "serving.md"
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]

SAMPLE = """\
Text.

<!-- tested: tests/docs/test_sample.py -->
```bash
lookahead data score --dataset 'my file.jsonl' \\
    --scorer auto:judge:judge.yaml   # 2. scores
# a whole comment line

lookahead check   # trailing
```

```bash
lookahead unmarked
```

<!-- not tested: takes hours -->
```python
print("hi")  # a comment in Python is kept
```
"""


def test_the_extractor_reads_blocks_as_a_shell_would(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(SAMPLE)
    first, unmarked, python = blocks(doc)
    assert (first.marker, first.note, first.line, first.lang) == ("tested", "tests/docs/test_sample.py", 4, "bash")
    assert commands(first) == [
        ["lookahead", "data", "score", "--dataset", "my file.jsonl", "--scorer", "auto:judge:judge.yaml"],
        ["lookahead", "check"],
    ]
    assert (unmarked.marker, python.marker, python.note) == (None, "not tested", "takes hours")
    assert python.text == 'print("hi")  # a comment in Python is kept\n'
    assert marked(doc, "tests/docs/test_sample.py") == [first]
    assert marked(doc, "tests/docs/other.py") == []
    with pytest.raises(AssertionError, match="does not start with make"):
        commands(first, programs=("make",))
    with pytest.raises(AssertionError, match="not commands"):
        commands(python)
    doc.write_text("```bash\nlookahead x\n")
    with pytest.raises(AssertionError, match="never closed"):
        blocks(doc)


def test_every_command_block_of_own_models_is_tested_or_says_why_not() -> None:
    shell = [b for b in blocks(OWN_MODELS) if b.lang == "bash"]
    for block in shell:
        assert block.marker is not None, f"{block.where()}: mark it <!-- tested: FILE --> or <!-- not tested: why -->"
        assert block.note, f"{block.where()}: the marker needs a test file or a reason"
    (tested,) = marked(OWN_MODELS, "tests/docs/test_own_models_doc.py")
    assert [step_name(argv) for argv in commands(tested)] == STEPS  # the steps the test runs, in its order
    untested = [b for b in shell if b.marker == "not tested"]
    assert all(argv[1] in ("tune", "train") for b in untested for argv in commands(b))


def test_the_serving_quickstart_and_the_readme_quickstart_are_marked() -> None:
    first_three = blocks(SERVING)[:3]
    assert [(b.lang, b.marker, b.note) for b in first_three] == [
        (lang, "tested", "tests/docs/test_own_models_doc.py") for lang in ("bash", "bash", "python")
    ]
    assert commands(first_three[0])[0][:2] == ["lookahead", "serve"]
    assert commands(first_three[1], programs=("curl",))
    quickstart = next(b for b in blocks(README) if b.lang == "bash")
    assert (quickstart.marker, quickstart.note) == ("tested", "tests/docs/test_readme_doc.py")
    assert commands(quickstart, programs=("make",)) == [["make", "train"], ["make", "test"]]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_tested_marker_names_a_test_that_reads_that_doc(doc: Path) -> None:
    """A ``tested:`` marker must name a test file that reads the blocks of this doc marked for it."""
    for block in blocks(doc):
        if block.marker != "tested":
            continue
        test = ROOT / block.note
        assert test.is_file(), f"{block.where()}: the marker names {block.note}, which does not exist"
        source = test.read_text(encoding="utf-8")
        assert re.search(rf'THIS = "{re.escape(block.note)}"', source), f"{block.note} does not mark itself THIS"
        assert "marked(" in source and doc.name in source, f"{block.note} does not read the blocks of {doc.name}"
