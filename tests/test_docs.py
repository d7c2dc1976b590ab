"""The examples in README.md and docs/ run as written (blocks marked `python no-run` excepted:
they need a hosted service or run inside a user's own test suite)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_python_examples_run(doc: Path, project: Path) -> None:
    blocks = BLOCK.findall(doc.read_text("utf-8"))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"{doc.name} block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{doc.name}, example {number} failed:\n{block}") from error
