"""The `rolecall` command line, run as a user runs it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from index import store
from tests.conftest import BUNDLED_KNOWLEDGE, REPO, write_docs


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_index_prints_a_summary_with_skips(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (small_knowledge / "LICENSE").write_text("MIT")
    code, out, err = _run(
        ["index", "--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")], capsys
    )
    assert code == 0
    # progress goes to stderr even off a terminal (logs, cron, Docker), without a progress bar
    assert "scanning " in err and "embedding 6 passages" in err and "it/s" not in err
    assert "added 3, changed 0, removed 0, unchanged 0, skipped 1" in out
    assert "skipped: LICENSE:" in out
    code, out, _ = _run(
        ["index", "--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")], capsys
    )
    assert "already up to date" in out and "unchanged 3" in out


def test_terminal_escapes_in_documents_and_file_names_never_reach_the_terminal(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a colour and a window title (OSC 0) in a document were printed raw by `ask`; a newline in a file
    # name split the summary's one-line-per-file report
    (small_knowledge / "tram-engineer.md").write_text(
        "# Tram Engineer\n\n## Pay\n\nA tram engineer earns \x1b[31m40,000 clams\x1b[0m a year."
        " \x1b]0;pwned\x07 Overtime is paid double.\n"
    )
    (small_knowledge / "new\nline.md").write_text("# Line Engineer\n\nLine engineers lay lines.\n")
    index = ["--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")]
    code, out, err = _run(["index", *index], capsys)
    assert code == 0 and "  added: new\\nline.md" in out.splitlines()
    code, out, err = _run(["ask", "what does a tram engineer earn?", *index], capsys)
    assert code == 0 and "40,000 clams a year" in out
    assert "\x1b" not in out + err and "\x07" not in out + err and "pwned" not in out


def test_a_document_that_turns_unreadable_keeps_its_indexed_version(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A half-saved or corrupted file must not silently drop what the bot knew from it.
    index = ["--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")]
    assert _run(["index", *index], capsys)[0] == 0
    (small_knowledge / "senior-back-end-engineer.md").write_bytes(b"\x00\x01 half-saved \xff")
    code, out, _ = _run(["index", *index], capsys)
    assert code == 0 and "removed 0" in out
    assert "skipped: senior-back-end-engineer.md: " in out and "the version indexed before is kept" in out
    code, out, _ = _run(["ask", "How much does a senior backend engineer make?", "--json", *index], capsys)
    assert json.loads(out)["passages"][0]["source"] == "senior-back-end-engineer.md"


def test_ask_builds_a_missing_index_and_answers_in_json(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "ask",
        "How much does a senior backend engineer make?",
        "--json",
        "--knowledge",
        str(small_knowledge),
        "--index",
        str(tmp_path / "idx"),
    ]
    code, out, err = _run(args, capsys)
    assert code == 0
    assert "building the index" in err
    answer = json.loads(out)
    assert answer["answered"] and answer["passages"][0]["source"] == "senior-back-end-engineer.md"
    assert len(answer["passages"]) <= 3


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_is_a_one_line_error_before_any_index_is_built(
    question: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["ask", question, "--index", str(tmp_path / "idx")], capsys)
    assert code == 2 and out == ""
    assert err.startswith("rolecall: error: the question is empty") and err.count("\n") == 1
    assert not (tmp_path / "idx").exists()


def test_ask_reads_one_question_per_line_from_stdin(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("what tools do SREs use?\n\nbanana bread recipe\n"))
    code, out, _ = _run(
        [
            "ask",
            "-",
            "--json",
            "-k",
            "2",
            "--knowledge",
            str(small_knowledge),
            "--index",
            str(tmp_path / "idx"),
        ],
        capsys,
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["answered"] for line in lines] == [True, False]
    assert len(lines[0]["passages"]) <= 2


def test_answers_read_from_a_pipe_each_follow_their_question(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the questions, a piped run's answers ran into each other and could not be told apart.
    monkeypatch.setattr(sys, "stdin", io.StringIO("what tools do SREs use?\nbanana bread recipe\n"))
    argv = ["ask", "-", "--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")]
    code, out, _ = _run(argv, capsys)
    first, second = out.split("\n\nyou> banana bread recipe\n")
    assert code == 0 and first.startswith("you> what tools do SREs use?\n1. ") and "source: " in first
    assert second.startswith("I don't know")


def _notes_folder(tmp_path: Path) -> Path:
    """A knowledge folder other than the test's small knowledge: one page of two sections."""
    notes = "# Notes\n\n## Pay\nPay is reviewed every spring.\n\n## Leave\nLeave is booked a month ahead.\n"
    return write_docs(tmp_path / "other", {"notes.md": notes})


def test_reindexing_without_a_folder_the_index_was_built_from_says_its_documents_go(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index built with --knowledge A, reindexed without it (the configured folder), lost A's documents
    # with no word beyond the counts; so does an index too big for token vectors lose the rerank.
    other, index = _notes_folder(tmp_path), ["--index", str(tmp_path / "idx")]
    assert _run(["index", "--knowledge", str(small_knowledge), *index], capsys)[0] == 0
    monkeypatch.setattr(store, "TOKEN_VECTORS_MAX_PASSAGES", 1)
    code, out, _ = _run(["index", "--knowledge", str(other), *index], capsys)
    assert code == 0 and "removed 3" in out
    note = f"  note: 3 documents indexed from {small_knowledge.resolve()} removed: it is not among this run's"
    assert note in out
    assert "passages, more than 1: answers are ranked without the word-by-word rerank" in out


def test_asking_an_index_built_from_other_folders_warns_that_a_reindex_removes_them(
    small_knowledge: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    other, index = _notes_folder(tmp_path), ["--index", str(tmp_path / "idx")]
    assert _run(["index", "--knowledge", str(other), *index], capsys)[0] == 0
    with caplog.at_level(logging.WARNING):
        assert _run(["ask", "when is pay reviewed?", "--knowledge", str(other), *index], capsys)[0] == 0
        assert not [
            r for r in caplog.records if r.levelno >= logging.WARNING
        ]  # its own folders: nothing to say
        code, out, _ = _run(
            ["ask", "when is pay reviewed?", "--knowledge", str(small_knowledge), *index], capsys
        )
    assert code == 0 and "spring" in out  # it still answers from what it holds
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"the index in {tmp_path / 'idx'} holds documents from {other.resolve()}, not among the knowledge folders"
        f" configured ({small_knowledge}): the next reindex removes them"
    ]


def test_a_damaged_index_is_rebuilt_with_a_message(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = ["--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")]
    _run(["index", *location], capsys)
    live = store.current_version(tmp_path / "idx")
    (live / store.MANIFEST_FILE).write_text("garbage")  # type: ignore[operator]
    code, out, err = _run(["ask", "what tools do SREs use?", "--json", *location], capsys)
    assert code == 0 and "damaged" in err and json.loads(out)["answered"]


@pytest.mark.parametrize("damaged_file", [store.VECTORS_FILE, store.SENTENCES_FILE])
def test_vectors_overwritten_in_place_are_found_damaged_and_rebuilt_by_ask_and_index(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damaged_file: str
) -> None:
    # same size, same header, the numbers garbage: the answer scored NaN ("score": NaN is no JSON), and
    # `rolecall index` said the index was up to date
    location = ["--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")]
    _run(["index", *location], capsys)

    def overwrite() -> None:
        path = store.current_version(tmp_path / "idx") / damaged_file  # type: ignore[operator]
        data = path.read_bytes()
        path.write_bytes(data[:200] + b"\xff" * (len(data) - 200))

    overwrite()
    code, out, err = _run(["ask", "what tools do SREs use?", "--json", *location], capsys)
    assert code == 0 and "not unit length" in err
    answer = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert answer["answered"] and answer["passages"][0]["source"] == "site-reliability-engineer.md"
    overwrite()
    code, out, _ = _run(["index", *location], capsys)
    assert code == 0 and "rebuilt from scratch" in out and "not unit length" in out


def test_expected_errors_are_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write_docs(tmp_path / "empty", {"blank.txt": "   \n"})
    code, _, err = _run(["index", "--knowledge", str(empty), "--index", str(tmp_path / "idx")], capsys)
    *progress, error = err.splitlines()  # what it was doing ("scanning …"), then the one line that matters
    assert code == 2 and error.startswith("rolecall: error: no readable documents") and "Traceback" not in err
    assert all(not line.startswith("rolecall: error") for line in progress)
    assert not (tmp_path / "idx").exists()  # a first build that failed leaves no empty index folder behind
    code, _, err = _run(
        ["index", "--knowledge", str(tmp_path / "missing"), "--index", str(tmp_path / "i2")], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "missing" in err and "Traceback" not in err


def test_an_index_folder_inside_the_knowledge_folder_is_a_one_line_error(
    small_knowledge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # every later reindex listed the index's own files as skipped documents
    for inside in (small_knowledge, small_knowledge / "idx"):
        code, _, err = _run(["index", "--knowledge", str(small_knowledge), "--index", str(inside)], capsys)
        assert code == 2 and err.splitlines()[-1].startswith(
            f"rolecall: error: the index folder {inside} is inside"
        )
        assert "Traceback" not in err
    hidden = small_knowledge / ".rolecall" / "index"  # hidden folders are never read as documents
    code, out, _ = _run(["index", "--knowledge", str(small_knowledge), "--index", str(hidden)], capsys)
    assert code == 0 and "skipped 0" in out


def test_eval_reports_the_four_figures(
    small_knowledge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"q": "sr backend pay?", "expect": ["$120,000"], "sources": ["senior-back-end-engineer.md"]}\n'
        '{"q": "who won the world cup?", "abstain": true}\n'
        '{"q": "sr backend pay?", "expect": ["no passage says this"], "sources": ["senior-back-end-engineer.md"]}\n'
    )
    code, out, err = _run(
        ["eval", str(cases), "--json", "--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")],
        capsys,
    )
    figures = json.loads(out)
    assert code == 0 and "not in the index" not in err
    assert figures["hit@1"] == 0.5 and figures["hit@3"] == 0.5 and figures["mrr"] == 0.5
    # the second pay question opens the right document, though no passage has its phrase
    assert figures["document_hit@1"] == 1.0 and figures["document_hit@3"] == 1.0
    assert figures["off_topic_refused"] == 1 and figures["false_refusals"] == 0
    code, out, _ = _run(
        [
            "eval",
            str(cases),
            "--misses",
            "--knowledge",
            str(small_knowledge),
            "--index",
            str(tmp_path / "idx"),
        ],
        capsys,
    )
    misses = [line for line in out.splitlines() if line.startswith("  miss: ")]
    assert code == 0 and len(misses) == 1, out  # the pay question whose phrase no passage holds
    assert misses[0].startswith(
        "  miss: sr backend pay? -> shown first: senior-back-end-engineer.md > Senior"
    )
    assert misses[0].endswith("(wanted: senior-back-end-engineer.md)")
    # a source the index does not hold (a typo, another corpus) is said, not silently scored as a miss
    cases.write_text(
        '{"q": "sr backend pay?", "expect": ["$120,000"], "sources": ["senior-backend-engineer.md"]}\n'
    )
    code, out, err = _run(
        ["eval", str(cases), "--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")], capsys
    )
    assert code == 0 and "hit@1 0.000" in out
    assert (
        f"warning: {cases} names sources that are not in the index" in err
        and "senior-backend-engineer.md" in err
    )


def test_console_chat_on_the_bundled_knowledge_answers_the_pay_question(tmp_path: Path) -> None:
    """The README's first command ends in this: a real process, the bundled knowledge, a cited passage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    env["ROLECALL_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        input="What does a senior back-end engineer earn?\nHow do I get promoted from senior to staff?\nquit\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "$120,000" in result.stdout
    assert "source: senior-back-end-engineer.md" in result.stdout
    # no per-passage number: the second passage's cosine was higher than the first's, against the order shown
    assert "score" not in result.stdout
    # piped questions are shown above their answers
    pay, promotion = result.stdout.split("you> How do I get promoted from senior to staff?\n")
    assert "you> What does a senior back-end engineer earn?\n1. " in pay and "$120,000" in pay
    assert promotion.startswith("1. ") and "$120,000" not in promotion
    assert "\033[" not in result.stdout  # piped output is plain
    # a passage's list items stay indented under their numbered heading
    list_items = [line for line in result.stdout.splitlines() if line.lstrip().startswith("- ")]
    assert list_items and all(line.startswith("   - ") for line in list_items)
    assert str(BUNDLED_KNOWLEDGE) in result.stderr  # told that it built the index first
    # no progress bar of transformers
    assert "Loading weights" not in result.stderr and "it/s]" not in result.stderr
