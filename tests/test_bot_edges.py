"""Unusual input and operator mistakes at the bot core: `rolecall ask/chat/eval/feedback` and the service.

Every case runs the real CLI (or service) with the packaged model over a real index; the model's ONNX
export and one index are shared by the module so the file stays fast.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer import context_around
from bot.cli import main
from index.embedding import SentenceTransformerEmbedder
from tests.conftest import REPO, SMALL_KNOWLEDGE, make_service, write_docs

PAY = "How much does a senior backend engineer make?"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One data folder (the cached ONNX export) and one index over the small knowledge, built once."""
    root = tmp_path_factory.mktemp("edges")
    knowledge = write_docs(root / "knowledge", SMALL_KNOWLEDGE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLECALL_DATA_DIR", str(root / "data"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        assert main(["index", "--knowledge", str(knowledge), "--index", str(root / "idx")]) == 0
    yield {"root": root, "data": root / "data", "knowledge": knowledge, "index": root / "idx"}


@pytest.fixture
def where(shared: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`--knowledge K --index I` of the shared index, with the shared data folder in the environment."""
    monkeypatch.setenv("ROLECALL_DATA_DIR", str(shared["data"]))
    return ["--knowledge", str(shared["knowledge"]), "--index", str(shared["index"])]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


class _Terminal(io.StringIO):
    """Typed input at a terminal."""

    def isatty(self) -> bool:
        return True


def _bytes_stdin(data: bytes) -> io.TextIOWrapper:
    """stdin as Python opens it under a UTF-8 locale such as en_US.UTF-8 (strict decoding)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")


# -- numbers and paths on the command line --------------------------------------------------------


@pytest.mark.parametrize("k", ["0", "-1", "11", "three"])
def test_ask_k_out_of_range_is_a_usage_error(
    k: str, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # -k 0 used to fall back to 3 passages silently, -k -1 to refuse every question
    code, out, err = _run(["ask", PAY, "-k", k, *where], capsys)
    assert code == 2 and out == ""
    assert "argument -k:" in err and "1 to 10" in err


@pytest.mark.parametrize("command", ["feedback", "audit"])
def test_last_must_be_a_positive_number(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --last -1 used to show every row but the first
    code, out, err = _run([command, "--last", "-1"], capsys)
    assert code == 2 and out == "" and "argument --last:" in err


@pytest.mark.parametrize("option", ["--index", "--knowledge"])
def test_an_empty_path_option_is_refused_before_anything_is_built(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an empty --index used to build the index in the working directory, an empty --knowledge to index it
    code, out, err = _run(["ask", PAY, option, ""], capsys)
    assert code == 2 and out == "" and f"argument {option}: " in err and "empty" in err
    assert list(tmp_path.iterdir()) == []  # the working directory


# -- what the question holds ----------------------------------------------------------------------


@pytest.mark.parametrize("question", ["\x01\x02", " \x1b \x7f "])
def test_a_question_of_control_characters_only_is_empty(
    question: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["ask", question, "--index", str(tmp_path / "idx")], capsys)
    assert code == 2 and out == "" and err.startswith("rolecall: error: the question is empty")
    assert err.count("\n") == 1 and not (tmp_path / "idx").exists()


def test_a_long_question_is_cut_with_a_note_and_answered(
    where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    question = f"{PAY} {'x' * 70_000}"  # a question with a pasted blob after it (it took 34 s uncut)
    code, out, _ = _run(["ask", question, *where], capsys)
    assert code == 0
    assert "source: senior-back-end-engineer.md" in out
    assert "(Your question was cut to its first " in out and "(the limit is 500)" in out
    code, out, _ = _run(["ask", question, "--json", *where], capsys)
    answer = json.loads(out)
    assert len(answer["question"]) <= 500 and answer["notes"][0].startswith("Your question was cut")


def test_a_cut_question_that_is_refused_still_says_it_was_cut(
    where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["ask", f"banana bread recipe {'y' * 2_000}", *where], capsys)
    assert code == 0
    assert out.startswith("(Your question was cut to its first ") and "I don't know that one" in out


def test_json_has_no_notes_key_without_notes(where: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["ask", PAY, "--json", *where], capsys)
    assert code == 0 and set(json.loads(out)) == {"question", "answered", "passages"}


def test_the_service_cuts_a_huge_question_itself(
    real_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    """Callers other than the adapters (eval, scripts) cannot hand the matcher 100 kB."""
    from bot.service import MAX_QUESTION_CHARS

    knowledge = write_docs(tmp_path / "knowledge", SMALL_KNOWLEDGE)
    service = make_service(knowledge, tmp_path / "idx", real_embedder)
    service.open()
    answer = service.ask("what tools do SREs use? " * 5000)
    assert len(answer.question) <= MAX_QUESTION_CHARS and answer.notes
    assert f"(the limit is {MAX_QUESTION_CHARS})" in answer.notes[0]
    with pytest.raises(ValueError, match="at least 1"):
        service.ask("what tools do SREs use?", -1)


# -- stdin ---------------------------------------------------------------------------------------


def test_stdin_that_is_not_utf8_is_answered(
    where: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a UnicodeDecodeError traceback before, under a strict UTF-8 locale
    monkeypatch.setattr(sys, "stdin", _bytes_stdin(b"what tools do SREs use? \xff\xfe\n\x00\x01\n"))
    code, out, _ = _run(["ask", "-", "--json", *where], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 1 and lines[0]["answered"]
    assert lines[0]["question"] == "what tools do SREs use? \ufffd\ufffd"


def test_chat_reads_stdin_that_is_not_utf8(
    where: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _bytes_stdin(b"what tools do SREs use? \xff\nquit\n"))
    code, out, _ = _run(["chat", *where], capsys)
    assert code == 0 and "source: site-reliability-engineer.md" in out


@pytest.mark.parametrize("data", ["", "\n  \n\x01\n"])
def test_ask_dash_without_a_question_is_a_one_line_error(
    data: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # exit 0 with no output before, after building the index
    monkeypatch.setattr(sys, "stdin", io.StringIO(data))
    code, out, err = _run(["ask", "-", "--index", str(tmp_path / "idx")], capsys)
    assert code == 2 and out == "" and err.startswith("rolecall: error: no question on stdin")
    assert err.count("\n") == 1 and not (tmp_path / "idx").exists()


def test_ask_dash_at_a_terminal_says_what_it_waits_for(
    where: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("what tools do SREs use?\n"))
    code, out, err = _run(["ask", "-", *where], capsys)
    assert code == 0 and "one question per line" in err and "Ctrl-D" in err
    assert "source: site-reliability-engineer.md" in out


def test_chat_ends_on_its_own_line_after_ctrl_d(
    where: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("hi\n"))
    code, out, _ = _run(["chat", *where], capsys)
    assert code == 0 and "Hi! I answer career questions" in out
    assert out.endswith("you> \n")  # the shell's prompt does not follow "you> " on the same line


def test_a_closed_pipe_ends_ask_quietly(shared: dict[str, Path]) -> None:
    """`rolecall ask - | head -1`: the reader goes away; no BrokenPipeError traceback."""
    env = {**os.environ, "ROLECALL_DATA_DIR": str(shared["data"]), "PYTHONPATH": str(REPO)}
    argv = ["ask", "-", "--knowledge", str(shared["knowledge"]), "--index", str(shared["index"])]
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, bot.cli; sys.exit(bot.cli.main(sys.argv[1:]))", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdout.close()  # nobody reads the answers
    child.stdin.write(b"what tools do SREs use?\n" * 50)
    child.stdin.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err


# -- eval files ----------------------------------------------------------------------------------


def test_an_eval_file_that_is_not_utf8_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(b'{"q": "sre tools?\xff"}\n')
    code, out, err = _run(["eval", str(cases), "--index", str(tmp_path / "idx")], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"rolecall: error: cannot read eval file {cases}: not UTF-8")
    assert not (tmp_path / "idx").exists()


def test_an_eval_file_without_questions_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n\n")
    code, out, err = _run(["eval", str(cases), "--json", "--index", str(tmp_path / "idx")], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "no questions" in err
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"q": "sre tools?", "expect": "SRE", "sources": ["a.md"]}', '"expect" must be a list of strings'),
        ('{"q": "sre tools?", "expect": ["SRE"], "sources": "a.md"}', '"sources" must be a list of strings'),
        ('{"q": null, "expect": ["SRE"]}', '"q" must be a non-empty string'),
        ('{"q": "  ", "expect": ["SRE"]}', '"q" must be a non-empty string'),
        ('["sre tools?"]', "expected a JSON object"),
    ],
)
def test_an_eval_line_of_the_wrong_shape_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, reason: str
) -> None:
    # "expect": "SRE" was read as the phrases "S", "R", "E", and a null question was asked as "None".
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"q": "what does an SRE do?", "expect": ["SRE"], "sources": ["a.md"]}\n' + line + "\n")
    code, out, err = _run(["eval", str(cases), "--index", str(tmp_path / "idx")], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"rolecall: error: {cases}:2: not an eval line") and reason in err
    assert not (tmp_path / "idx").exists()


def test_the_context_before_a_highlight_starts_at_a_sentence_never_inside_one() -> None:
    # "…an average salary of around $120,000" hid who earns it: the cut fell inside the sentence before.
    first = "In the US, a senior back-end engineer earns an average salary of around $120,000 a year."
    highlight = "Actual pay depends heavily on the employer and the city."
    text = f"Pay varies. {first} {highlight} Big tech pays more, with stock and a bonus on top of the base."
    before, shown, after = context_around(text, highlight, limit=200)
    assert (before, shown) == (f"… {first} ", highlight) and after.endswith("…")
    before, _, _ = context_around(text, highlight, limit=120)  # no room for the sentence before: none of it
    assert before == "… "
    assert "".join(context_around(text, highlight, limit=1000)) == text  # room for all: all of it
    # an abbreviation's full stop ends no sentence (a review found "U.S." cut the one before in two)
    hubs = "Most teams hire in the U.S. and the U.K. from a pool of senior engineers who earn about $150,000."
    before, _, _ = context_around(
        f"{hubs} Pay varies by city. Smaller firms pay less.", "Pay varies by city.", limit=130
    )
    assert before == "… "
