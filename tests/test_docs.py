"""The documents show what the program does: every output and snippet they show runs here.

Documents: README.md, docs/*.md and examples/README.md. Conventions for their authors:

Commands -- ```console blocks
    A line ``$ gradlab ARGS`` is a command (a ``# comment`` after it is not part of it); the
    lines after it, up to the next ``$`` line or the end of the block, are what it prints on
    standard output. A line ``...`` stands for any number of output lines, and a word ``...``
    inside a line for any words there. The commands of one document run in order, in-process
    (``gradlab.cli.main``), in one fresh folder holding a link to examples/ and the document's
    files (below), so ``gradlab predict`` finds the model ``gradlab train`` wrote above it.
    Each must exit with 0 or 1; bad input (2) is docs/bad-input.md's business.

Python -- ```python blocks
    Each runs as written, in a fresh namespace, in that folder. A block whose first line is
    ``# NAME.py`` is also written there as NAME.py, for the document's commands to use
    (``gradlab check NAME.py:FUNC``). A statement ``...`` that is a function's whole body
    stands for the reader's own gradient: it becomes ``return gradlab.gradient(problem,
    params)``. Functions named ``test_*`` that a block defines are called, so a pasted
    property test must pass. A hypothesis ``max_examples`` above SNIPPET_MAX_EXAMPLES is
    lowered to it, the only other change: jax compiles once per network shape, and 200
    examples would take half a minute.

How output is compared
    Line by line after the elisions, each line split into words and each word into numbers
    and the text around them. Text must match exactly (runs of spaces count as one space),
    integers too. Other numbers match to their printed precision -- within one unit of their
    last digit, which is as far as round-off can move a correctly rounded value -- except
    numbers that measure round-off, whose digits differ between machines (BLAS kernels and
    thread counts sum in different orders) while their order of magnitude is the program's:

    * Values below TINY = 1e-12. gradlab's quantities -- costs, gradients, activations,
      relative errors -- are of order one, so a value below 1e-12 of them is float64
      round-off (eps = 2.2e-16 times sums of a few terms): a shown value below TINY matches
      any run value below TINY, zero included. That is its order of magnitude: round-off.
    * Error measures in scientific notation: numbers in a column headed by, or on a line
      after a label naming, a difference, an error or a ratio to a bound (ERROR_COLUMNS,
      ERROR_LABELS). They compare two computations of one quantity, and a finite difference
      divides the cost's round-off (eps |J|) by its step, so they move by tens of per cent
      between machines: a shown value matches a run value of the same sign within one
      decade (a ratio below 10).

    The rule was checked against runs of every documented command under OpenBLAS's
    Prescott, Nehalem, Sandybridge and Haswell kernels and with one and two threads: error
    measures moved by up to 0.53 decades, tiny values by more (or to 0), and no other
    number moved at all. Timings differ from run to run and are never shown as output: a
    documented line showing a time (``0.14 s``) fails; elide it (``time ... s``).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "README.md"]

#: Below this, a value of gradlab's order-one quantities is float64 round-off (see above).
TINY = 1e-12
#: Words that head a column of error measures: compare's max |a-b|, max rel err and norm
#: ratio, explain's |diff|, and the per-method error columns of ``gradlab steps``.
ERROR_COLUMNS = ("|a-b|", "err", "ratio", "|diff|", "forward", "central", "richardson", "complex")
#: Labels that, earlier on a line, make its scientific numbers error measures.
ERROR_LABELS = ("|a-b|", "err", "error", "ratio", "bound", "|diff|", "off by")
#: Cap on a snippet's hypothesis examples (the suite's time; see the module docstring).
SNIPPET_MAX_EXAMPLES = 20
#: The README is a front door, not a manual.
README_MAX_BYTES = 12 * 1024

NUMBER = re.compile(r"(?<![A-Za-z_\d.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_\d])")
TIMING = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:s|ms|seconds?|minutes?)(?![\w])")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[\w-]*)\s*$")
FILE_HEADER = re.compile(r"^# (?P<name>[\w.-]+\.py)\s*$")
USER_BODY = re.compile(r"^(?P<indent>\s+)\.\.\.(?P<comment>\s*#.*)?$", re.M)
MAX_EXAMPLES = re.compile(r"max_examples=(\d+)")
ELLIPSIS = "..."


# ------------------------------------------------------------------ reading the documents


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    info: str
    lines: list[str]

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


@dataclass
class Command:
    block: Block
    line: int
    argv: list[str]
    shown: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.block.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, indentation of an indented fence removed."""
    found, current, indent = [], None, 0
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if current is None:
            if m:
                current, indent = Block(doc, number, m["info"], []), len(m["indent"])
        elif m and not m["info"]:
            found.append(current)
            current = None
        else:
            current.lines.append(line[indent:] if line[:indent].strip() == "" else line)
    assert current is None, f"{doc.relative_to(ROOT)}: a code block opened at line {current.line} is never closed"
    return found


def commands(doc: Path) -> list[Command]:
    cmds = []
    for block in blocks(doc):
        if block.info != "console":
            continue
        for offset, line in enumerate(block.lines, 1):
            if line.startswith("$"):
                words = shlex.split(line[1:], comments=True)
                assert words and words[0] == "gradlab", f"{block.where}: only gradlab commands are run; got {line!r}"
                cmds.append(Command(block, block.line + offset, words[1:]))
            else:
                assert cmds and cmds[-1].block is block, f"{block.where}: output before any `$ gradlab` line"
                cmds[-1].shown.append(line)
    return cmds


def snippets(doc: Path) -> list[Block]:
    return [b for b in blocks(doc) if b.info == "python"]


def files(doc: Path) -> dict[str, str]:
    """The files a document shows (python blocks headed ``# NAME.py``)."""
    out = {}
    for block in snippets(doc):
        m = FILE_HEADER.match(block.lines[0]) if block.lines else None
        if m:
            out[m["name"]] = "\n".join(block.lines) + "\n"
    return out


ALL_COMMANDS = [c for doc in DOCS for c in commands(doc)]
ALL_SNIPPETS = [s for doc in DOCS for s in snippets(doc)]


# ------------------------------------------------------------------ comparing output


@dataclass
class Token:
    kind: str  # "n" number, "t" text, "..." any words
    text: str
    end: int = 0  # column just past the token, in its line


def tokens(line: str) -> list[Token]:
    out = []
    for word in re.finditer(r"\S+", line):
        if word.group() == ELLIPSIS:
            out.append(Token(ELLIPSIS, ELLIPSIS))
            continue
        pos, text = 0, word.group()
        for m in NUMBER.finditer(text):
            if m.start() > pos:
                out.append(Token("t", text[pos:m.start()]))
            out.append(Token("n", m.group(), word.start() + m.end()))
            pos = m.end()
        if pos < len(text):
            out.append(Token("t", text[pos:]))
    return out


def _header(lines: list[str], index: int) -> list[tuple[str, int]]:
    """The column headings above table row ``lines[index]``, as (word, end column).

    The heading is the nearest line above without numbers, with only numbered rows between
    them and no blank line; a line with no such heading has none.
    """
    for above in range(index - 1, -1, -1):
        line = lines[above]
        if not line.strip():
            return []
        if not any(t.kind == "n" for t in tokens(line)):
            return [(m.group(), m.end()) for m in re.finditer(r"\S+", line)]
    return []


def _is_error_measure(line: str, token: Token, heading: list[tuple[str, int]]) -> bool:
    before = line[: token.end - len(token.text)]
    if any(label in before for label in ERROR_LABELS):
        return True
    if heading:
        word, end = min(heading, key=lambda h: abs(h[1] - token.end))
        return abs(end - token.end) <= 2 and any(w in word for w in ERROR_COLUMNS)
    return False


def _unit_in_last_place(text: str) -> float:
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_match(shown: str, run: str, error_measure: bool) -> bool:
    """Whether a documented number and the one printed now agree (rules in the module docstring)."""
    a, b = float(shown), float(run)
    if abs(a) < TINY and abs(b) < TINY:
        return True
    if not re.search(r"[.eE]", shown):
        return re.search(r"[.eE]", run) is None and int(shown) == int(run)
    if error_measure and "e" in shown.lower():
        if a == 0 or b == 0 or (a > 0) != (b > 0):
            return a == b
        return abs(math.log10(abs(a) / abs(b))) < 1
    return abs(a - b) <= _unit_in_last_place(shown) * (1 + 1e-9)


def _match_tokens(doc: list[Token], run: list[Token], line: str, heading) -> bool:
    if not doc:
        return not run
    first = doc[0]
    if first.kind == ELLIPSIS:
        return any(_match_tokens(doc[1:], run[k:], line, heading) for k in range(len(run) + 1))
    if not run or run[0].kind != first.kind:
        return False
    if first.kind == "t":
        ok = first.text == run[0].text
    else:
        ok = numbers_match(first.text, run[0].text, _is_error_measure(line, run[0], heading))
    return ok and _match_tokens(doc[1:], run[1:], line, heading)


def line_matches(shown: str, run_lines: list[str], index: int) -> bool:
    run = run_lines[index]
    return _match_tokens(tokens(shown), tokens(run), run, _header(run_lines, index))


def output_matches(shown: list[str], run: list[str]) -> bool:
    """Whether the shown lines, ``...`` lines eliding any number of run lines, are the run's."""

    def match(i: int, j: int) -> bool:
        if i == len(shown):
            return j == len(run)
        if shown[i].strip() == ELLIPSIS:
            return any(match(i + 1, k) for k in range(j, len(run) + 1))
        if j == len(run):
            return False
        if not shown[i].strip() or not run[j].strip():
            return not shown[i].strip() and not run[j].strip() and match(i + 1, j + 1)
        return line_matches(shown[i], run, j) and match(i + 1, j + 1)

    return match(0, 0)


def first_difference(shown: list[str], run: list[str]) -> str:
    """A readable account of where shown and run output part (for the failure message)."""
    j = 0
    for i, line in enumerate(shown):
        if line.strip() == ELLIPSIS:
            rest = [s for s in shown[i + 1:] if s.strip() and s.strip() != ELLIPSIS]
            if not rest:
                return "after the last `...` (nothing below it is shown)"
            nxt = rest[0]
            for k in range(j, len(run)):
                if run[k].strip() and line_matches(nxt, run, k):
                    j = k
                    break
            else:
                return f"no run line matches the shown line {nxt!r} after a `...`"
            continue
        if j >= len(run):
            return f"the run ended before the shown line {line!r}"
        if not (line.strip() == run[j].strip() == "" or (line.strip() and run[j].strip()
                                                          and line_matches(line, run, j))):
            return f"shown: {line!r}\n   run: {run[j]!r}"
        j += 1
    return f"the run goes on after the shown lines: {run[j:j + 3]!r}" if j < len(run) else "?"


# ------------------------------------------------------------------ running the documents


@contextlib.contextmanager
def _in_folder(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _workdir(tmp_path_factory, doc: Path) -> Path:
    folder = tmp_path_factory.mktemp(doc.stem.lower() + "-doc")
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    for name, text in files(doc).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _run(argv: list[str]) -> tuple[int, str, str]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="\n")
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's --help
            status = exc.code or 0
        out.flush()
    out.seek(0)
    return status, out.buffer.getvalue().decode("utf-8"), err.getvalue()


@pytest.fixture(scope="module")
def doc_runs(tmp_path_factory):
    """Every document's commands, run in order in the document's folder: {where: (status, out, err)}."""
    results = {}
    for doc in DOCS:
        cmds = commands(doc)
        if not cmds:
            continue
        with _in_folder(_workdir(tmp_path_factory, doc)):
            for cmd in cmds:
                results[cmd.where] = _run(cmd.argv)
    return results


def test_the_documents_show_commands_and_snippets():
    # A renamed fence (```text for ```console) would silently drop every check below.
    assert len(ALL_COMMANDS) >= 10, [c.where for c in ALL_COMMANDS]
    assert len(ALL_SNIPPETS) >= 5, [s.where for s in ALL_SNIPPETS]
    shown_in = {c.block.doc.name for c in ALL_COMMANDS}
    assert {"README.md", "manual.md"} <= shown_in, shown_in


@pytest.mark.parametrize("cmd", ALL_COMMANDS, ids=lambda c: c.where)
def test_documented_output_is_what_the_command_prints(cmd, doc_runs):
    status, out, err = doc_runs[cmd.where]
    shown = "gradlab " + shlex.join(cmd.argv)
    assert status in (0, 1), f"{cmd.where}: `{shown}` exited {status}: {err.strip()}"
    for line in cmd.shown:
        assert not TIMING.search(line), f"{cmd.where}: timings vary from run to run; elide them (time ... s): {line!r}"
    run = out.splitlines()
    if not output_matches(cmd.shown, run):
        pytest.fail(f"{cmd.where}: `{shown}` no longer prints what the document shows; paste its output "
                    f"(the rules are in tests/test_docs.py)\n {first_difference(cmd.shown, run)}",
                    pytrace=False)


# ------------------------------------------------------------------ python snippets


def as_run(source: str) -> str:
    """A snippet as the suite runs it: the reader's ``...`` gradient filled in, examples capped."""
    source = USER_BODY.sub(lambda m: f"{m['indent']}return gradlab.gradient(problem, params){m['comment'] or ''}", source)
    source = MAX_EXAMPLES.sub(lambda m: f"max_examples={min(int(m[1]), SNIPPET_MAX_EXAMPLES)}", source)
    return "import gradlab\n" + source


def _exec(block: Block, source: str, folder: Path) -> dict:
    namespace = {"__name__": "__gradlab_doc__"}
    with _in_folder(folder):
        exec(compile(source, block.where, "exec"), namespace)  # noqa: S102 -- the documents' own code
        for name in re.findall(r"^def (test_\w+)\(", source, re.M):
            namespace[name]()
    return namespace


@pytest.mark.parametrize("block", ALL_SNIPPETS, ids=lambda b: b.where)
def test_documented_snippet_runs_as_written(block, tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    _exec(block, as_run("\n".join(block.lines) + "\n"), tmp_path)


def student_gradient(problem, params):
    """An ordinary hand-written gradient for 3-layer networks only, vectorised over examples."""

    def sigmoid(z):
        # Clipped as careful code is: the strategies draw saturating weights on purpose,
        # and np.exp overflowing would warn (an error in this suite).
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))

    theta1, theta2 = problem.network.unpack(params)
    m, lam = problem.m, problem.lam
    a1 = np.hstack([np.ones((m, 1)), problem.X])
    a2 = np.hstack([np.ones((m, 1)), sigmoid(a1 @ theta1.T)])
    a3 = sigmoid(a2 @ theta2.T)
    d3 = a3 - problem.Y
    d2 = (d3 @ theta2[:, 1:]) * a2[:, 1:] * (1 - a2[:, 1:])
    g1, g2 = d2.T @ a1 / m, d3.T @ a2 / m
    g1[:, 1:] += lam / m * theta1[:, 1:]
    g2[:, 1:] += lam / m * theta2[:, 1:]
    return np.concatenate([g1.ravel(), g2.ravel()])


def _suite_snippet() -> Block:
    found = [b for b in snippets(ROOT / "README.md")
             if "assert_gradients_agree" in "\n".join(b.lines) and USER_BODY.search("\n".join(b.lines))]
    assert len(found) == 1, "README.md shows one property test to paste into a suite, with a `...` gradient"
    return found[0]


def test_the_suite_snippet_passes_for_a_three_layer_student_gradient(tmp_path):
    # The snippet as pasted by a student whose gradient handles 3-layer networks only,
    # as most do: gradlab.testing's default strategies must not draw other depths.
    block = _suite_snippet()
    source = "\n".join(block.lines) + "\n"
    source = USER_BODY.sub(lambda m: f"{m['indent']}return student_gradient(problem, params)", source)
    source = MAX_EXAMPLES.sub(lambda m: f"max_examples={min(int(m[1]), SNIPPET_MAX_EXAMPLES)}", source)
    namespace = {"__name__": "__gradlab_doc__", "student_gradient": student_gradient}
    with _in_folder(tmp_path):
        exec(compile(source, block.where, "exec"), namespace)  # noqa: S102
        tests = [name for name in namespace if name.startswith("test_")]
        assert tests, "the suite snippet defines no test"
        for name in tests:
            namespace[name]()


def test_the_suite_snippet_catches_a_wrong_gradient():
    # A snippet that passed for any function would prove nothing. Its test body is called
    # on one 3-layer case: hypothesis would shrink the failure, compiling jax for every
    # shape it tries (minutes).
    block = _suite_snippet()
    source = "\n".join(block.lines) + "\n"
    source = USER_BODY.sub(lambda m: f"{m['indent']}return 2 * student_gradient(problem, params)", source)
    namespace = {"__name__": "__gradlab_doc__", "student_gradient": student_gradient}
    exec(compile(source, block.where, "exec"), namespace)  # noqa: S102
    test = next(namespace[n] for n in namespace if n.startswith("test_"))
    problem = gradlab.debug_problem((3, 5, 3), lam=1.0)
    with pytest.raises(AssertionError, match="disagree"):
        test.hypothesis.inner_test((problem, gradlab.debug_init(problem.network)))


# ------------------------------------------------------------------ the documents themselves


def test_readme_is_a_front_door():
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/ (limit {README_MAX_BYTES})"


def test_readme_quick_start_has_the_two_lines_ci_runs():
    # .ci/run reads the first ```bash block after "## Quick start" and expects two commands.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index("\n## Quick start"):]
    block = after[after.index("```bash\n") + len("```bash\n"):]
    lines = [line for line in block[:block.index("```")].splitlines() if line.strip()]
    assert len(lines) == 2 and "pip install -e '.[test]'" in lines[0] and "pytest" in lines[1], lines


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#+ (?P<title>.+)$", re.M)


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_resolve(doc):
    for m in LINK.finditer(doc.read_text(encoding="utf-8")):
        target = m["target"]
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.is_relative_to(ROOT), f"{doc.name} links {target}, outside the repository"
        assert file.exists(), f"{doc.name} links {target}, which does not exist"
        if anchor and file.suffix == ".md":
            anchors = {_anchor(h) for h in HEADING.findall(file.read_text(encoding="utf-8"))}
            assert anchor in anchors, f"{doc.name} links {target}: no such heading in {file.name}"


DOTTED = re.compile(r"(?<![\w/.-])(gradlab(?:\.\w+)+)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_gradlab_name_a_document_mentions_exists(doc):
    import importlib

    for dotted in sorted(set(DOTTED.findall(doc.read_text(encoding="utf-8")))):
        parts = dotted.split(".")
        obj, k = None, len(parts)
        while k:  # the longest importable module prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:k]))
                break
            except ImportError:
                k -= 1
        for attr in parts[k:]:
            assert hasattr(obj, attr), f"{doc.name} mentions `{dotted}`, which gradlab does not have"
            obj = getattr(obj, attr)


def _help_options(command: str) -> set[str]:
    status, out, _ = _run([command, "--help"])
    assert status == 0, (command, out)
    # The options list: each option starts a line of argparse's help ("  --sizes SIZES ...").
    return set(re.findall(r"^ {2}(?:-\w, )?(--[a-z][a-z-]*)", out, re.M)) - {"--help"}


def _manual_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "manual.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `gradlab (\w+)[^\n]*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.mark.parametrize("command", ["compare", "check", "train", "predict", "plot", "explain", "steps"])
def test_the_manual_lists_every_option_of_every_command(command):
    sections = _manual_sections()
    assert command in sections, f"docs/manual.md has no section '## `gradlab {command}`'"
    missing = sorted(o for o in _help_options(command) if f"`{o}" not in sections[command])
    assert not missing, f"docs/manual.md's `gradlab {command}` section does not describe {missing}"


# ------------------------------------------------------------------ the comparison rules


@pytest.mark.parametrize("shown, run, error, ok", [
    ("2.096801983", "2.096801983", False, True),
    ("2.096801983", "2.096801984", False, True),     # one unit in the last digit
    ("2.096801983", "2.096801985", False, False),
    ("95.82", "95.83", False, True),
    ("95.82", "95.84", False, False),
    ("202", "203", False, False),                     # integers exactly
    ("1.735e-18", "0.000e+00", False, True),          # round-off: below TINY
    ("1.735e-18", "3.1e-11", False, False),
    ("2.886e-07", "9.704e-07", True, True),           # error measure: within a decade
    ("2.886e-07", "3.000e-06", True, False),
    ("2.886e-07", "9.704e-07", False, False),         # not an error measure: printed precision
    ("3.472e+00", "3.473e+00", False, True),
    ("3.472e+00", "3.475e+00", False, False),
])
def test_number_rules(shown, run, error, ok):
    assert numbers_match(shown, run, error) is ok


def test_elisions_and_columns():
    run = [
        "backprop vs numeric: AGREE",
        "  layer       shape    max |a-b|  max rel err   norm ratio",
        "  Theta1        5x4    6.782e-11    9.704e-07    3.316e-09",
        "verdict: all 3 pair(s) agree",
    ]
    shown = ["backprop vs numeric: AGREE", "...", "  Theta1        5x4    6.782e-11    2.886e-07    3.239e-09", "..."]
    assert output_matches(shown, run)
    assert not output_matches(["backprop vs numeric: DIFFER", "..."], run)
    assert not output_matches(["  Theta1        5x4    6.782e-11    2.886e-07    3.239e-09"], run[2:])  # no heading
    assert output_matches(["backprop vs ... AGREE", "..."], run)
