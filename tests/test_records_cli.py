"""`rolecall feedback` and `rolecall audit`: the stored votes and admin actions as tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.records import RecordStore, user_hash
from bot.settings import load_settings


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def store() -> RecordStore:
    return RecordStore(load_settings().database_path)  # under the test's ROLECALL_DATA_DIR


def test_empty_stores_say_so_without_creating_anything(store: RecordStore, capsys) -> None:
    assert _run(["feedback"], capsys) == (0, [f"no feedback votes yet ({store.path})"])
    assert _run(["audit"], capsys) == (0, [f"no admin actions recorded yet ({store.path})"])
    assert not store.path.exists()


def test_feedback_prints_every_vote_as_a_row_and_a_tally(store: RecordStore, capsys) -> None:
    long_question = "What does a senior back-end engineer earn\nin Lisbon " + "and elsewhere " * 10
    store.record_vote("slack", "UALICE", long_question, ["senior-back-end-engineer.md", "ladder.md"], "up")
    store.record_vote("discord", "4567", "which tools do SREs use?", ["site-reliability-engineer.md"], "down")
    store.record_vote("slack", "UBOB", "pay?", [], "up")

    code, lines = _run(["feedback"], capsys)
    assert code == 0
    assert lines[0].split() == ["time", "(UTC)", "platform", "user", "vote", "question", "sources"]
    assert set(lines[1]) == {"-", " "}
    rows = lines[2:5]
    assert rows[0].split()[1:4] == ["slack", user_hash("slack", "UALICE"), "up"]
    assert "What does a senior back-end engineer earn in Lisbon" in rows[0] and "…" in rows[0]
    assert "senior-back-end-engineer.md, ladder.md" in rows[0]
    assert rows[1].split()[1:4] == ["discord", user_hash("discord", "4567"), "down"]
    assert "UALICE" not in "\n".join(lines)  # pseudonyms only
    assert lines[-1] == "3 votes: 2 up, 1 down"
    header_columns = [lines[0].index(name) for name in ("platform", "user", "vote", "question")]
    assert all(row[col - 2 : col] == "  " for row in rows for col in header_columns)  # aligned columns

    code, lines = _run(["feedback", "--last", "1"], capsys)
    assert code == 0 and len(lines) == 5 and "pay?" in lines[2]
    assert lines[-1] == "3 votes: 2 up, 1 down"


def test_audit_prints_every_admin_action(store: RecordStore, capsys) -> None:
    store.record_admin_action("slack", "UBOB", "reindex", "refused")
    store.record_admin_action("discord", "777", "reindex", "allowed", "added 1, changed 0, removed 0")
    code, lines = _run(["audit"], capsys)
    assert code == 0
    assert lines[0].split() == ["time", "(UTC)", "platform", "user", "action", "result", "detail"]
    assert lines[2].split()[1:5] == ["slack", user_hash("slack", "UBOB"), "reindex", "refused"]
    assert lines[3].split()[1:5] == ["discord", user_hash("discord", "777"), "reindex", "allowed"]
    assert lines[3].endswith("added 1, changed 0, removed 0")
    assert lines[-1] == "2 admin actions"


def test_an_unreadable_store_is_one_error_line(store: RecordStore, capsys) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"this is not a database" * 100)
    code = main(["feedback"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(store.path) in err


def test_a_data_folder_this_user_may_not_read_is_one_error_line(
    store: RecordStore, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as the OS answers for a folder without read permission (tests may run as root, where chmod does not)
    real_exists = Path.exists

    def refused(path: Path, **kwargs: object) -> bool:
        if path == store.path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_exists(path, **kwargs)

    monkeypatch.setattr(Path, "exists", refused)
    for command in ("feedback", "audit"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert err.startswith("rolecall: error: cannot read the record store") and "Permission denied" in err
        assert len(err.splitlines()) == 1


def test_data_dir_comes_from_the_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ROLECALL_DATA_DIR", str(tmp_path / "elsewhere"))
    RecordStore(tmp_path / "elsewhere" / "rolecall.sqlite3").record_admin_action(
        "slack", "U1", "reindex", "busy"
    )
    code, lines = _run(["audit"], capsys)
    assert code == 0 and "busy" in lines[2]
