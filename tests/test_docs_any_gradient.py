"""The Python blocks of docs/check-any-gradient.md run as written: the library examples
(in order, sharing names), and the pasteable property test fails for a planted bug.

(That it passes as written is tests/test_docs.py's: it runs every document's snippets and
the tests they define.)"""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "check-any-gradient.md"
#: The Python blocks, less the file the command-line examples use (``# student.py``, which
#: tests/test_docs.py writes beside those commands and runs them on).
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
          if not b.startswith("# student.py\n")]


def test_the_library_examples_run_and_pass():
    namespace: dict = {}
    for block in BLOCKS[:2]:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["report"].ok


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_the_property_test_fails_for_a_planted_bug():
    namespace: dict = {}
    exec(compile(BLOCKS[2], str(DOC), "exec"), namespace)
    namespace["relu_backward"] = lambda dout, cache: dout.copy()  # the mask forgotten
    try:
        namespace["test_relu_backward"]()
    except AssertionError as exc:
        assert "[entries] x (input 0)" in str(exc) and "shape (1, 1)" in str(exc)
    else:
        raise AssertionError("the property test passed a relu backward without its mask")
