"""The index on disk: incremental rebuilds, atomic versions, and clear errors for damaged files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.service import RolecallService
from index import store
from index.builder import build_index
from index.chunking import passage_sentences
from index.embedding import ModelSpec, resolve_model
from index.errors import IndexCorruptError, IndexMissingError, NoDocumentsError
from index.search import SearchIndex
from tests.conftest import FakeEmbedder, make_service, rolecall_bound_by_file_modes, write_docs


def _spec(embedder: FakeEmbedder) -> ModelSpec:
    return ModelSpec(embedder.model_id, resolve_model(None).location)


def _build(knowledge: Path, index_dir: Path, embedder: FakeEmbedder, calls: list[int] | None = None):
    def factory() -> FakeEmbedder:
        if calls is not None:
            calls.append(1)
        return embedder

    return build_index([knowledge], index_dir, _spec(embedder), factory)


def test_first_build_reports_every_document_added(small_knowledge: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    report = _build(small_knowledge, tmp_path / "idx", embedder)
    assert sorted(report.added) == [
        "career-ladder.md",
        "senior-back-end-engineer.md",
        "site-reliability-engineer.md",
    ]
    assert report.passages == report.embedded_passages > 0
    passages = SearchIndex.open(tmp_path / "idx").passages
    sentences = {s for p in passages for s in passage_sentences(p)}
    assert embedder.embedded_documents == len(passages) + len(sentences)  # each distinct sentence once
    loaded = SearchIndex.open(tmp_path / "idx")
    assert len(loaded) == report.passages
    assert {d.title for d in loaded.documents} >= {
        "Senior Back-End Software Engineer",
        "Engineering Career Ladder",
    }


def test_nothing_changed_loads_no_model_and_writes_no_version(small_knowledge: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    _build(small_knowledge, tmp_path / "idx", embedder)
    live = store.current_version(tmp_path / "idx")
    calls: list[int] = []
    report = _build(small_knowledge, tmp_path / "idx", embedder, calls)
    assert calls == []  # the model was never asked for
    assert not report.wrote_new_version
    assert len(report.unchanged) == 3 and not (report.added or report.changed or report.removed)
    assert store.current_version(tmp_path / "idx") == live


def test_only_the_changed_document_is_re_embedded(small_knowledge: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    _build(small_knowledge, tmp_path / "idx", embedder)
    before = SearchIndex.open(tmp_path / "idx")
    ladder = small_knowledge / "career-ladder.md"
    ladder.write_text(
        ladder.read_text() + "\n## Manager track\nEngineering managers grow people and teams.\n"
    )
    (small_knowledge / "site-reliability-engineer.md").unlink()
    embedder.embedded_documents = 0
    report = _build(small_knowledge, tmp_path / "idx", embedder)
    assert report.changed == ["career-ladder.md"] and report.removed == ["site-reliability-engineer.md"]
    assert report.unchanged == ["senior-back-end-engineer.md"]
    ladder_passages = [
        p for p in SearchIndex.open(tmp_path / "idx").passages if p.source == "career-ladder.md"
    ]
    ladder_sentences = {s for p in ladder_passages for s in passage_sentences(p)}
    assert embedder.embedded_documents == len(ladder_passages) + len(ladder_sentences)
    after = SearchIndex.open(tmp_path / "idx")
    kept_before = [i for i, p in enumerate(before.passages) if p.source == "senior-back-end-engineer.md"]
    kept_after = [i for i, p in enumerate(after.passages) if p.source == "senior-back-end-engineer.md"]
    assert [before.passages[i] for i in kept_before] == [after.passages[i] for i in kept_after]
    for old, new in zip(kept_before, kept_after, strict=True):  # reused, and still in step with passages
        assert np.array_equal(before.sentence_rows(old), after.sentence_rows(new))
        assert np.array_equal(before.vectors[old], after.vectors[new])
    for pid, passage in enumerate(after.passages):
        expected = FakeEmbedder().embed_queries(passage_sentences(passage))
        assert np.allclose(after.sentence_rows(pid), expected)
    assert not any(p.source == "site-reliability-engineer.md" for p in after.passages)


def test_a_removed_document_drops_out_without_loading_the_model(
    small_knowledge: Path, tmp_path: Path
) -> None:
    embedder = FakeEmbedder()
    _build(small_knowledge, tmp_path / "idx", embedder)
    before = SearchIndex.open(tmp_path / "idx")
    (small_knowledge / "site-reliability-engineer.md").unlink()
    calls: list[int] = []
    report = _build(small_knowledge, tmp_path / "idx", embedder, calls)
    assert calls == [] and report.wrote_new_version and report.removed == ["site-reliability-engineer.md"]
    after = SearchIndex.open(tmp_path / "idx")
    kept = [i for i, p in enumerate(before.passages) if p.source != "site-reliability-engineer.md"]
    assert [before.passages[i] for i in kept] == list(after.passages) and len(after) == report.passages
    for new, old in enumerate(kept):
        assert np.array_equal(before.vectors[old], after.vectors[new])
        assert np.array_equal(before.sentence_rows(old), after.sentence_rows(new))


def test_unreadable_files_are_skipped_with_a_reason_and_the_build_goes_on(
    small_knowledge: Path, tmp_path: Path
) -> None:
    (small_knowledge / "broken.pdf").write_bytes(b"not a pdf at all")
    (small_knowledge / "notes.xyz").write_text("hello")
    report = _build(small_knowledge, tmp_path / "idx", FakeEmbedder())
    skipped = {s.source: s.reason for s in report.skipped}
    assert set(skipped) == {"broken.pdf", "notes.xyz"}
    assert all(reason and "\n" not in reason for reason in skipped.values())
    assert len(report.added) == 3


def test_a_folder_with_no_readable_document_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "k", {"empty.md": ""})
    with pytest.raises(NoDocumentsError, match="no readable documents"):
        _build(folder, tmp_path / "idx", FakeEmbedder())


def test_another_model_forces_a_full_rebuild(small_knowledge: Path, tmp_path: Path) -> None:
    first = FakeEmbedder()
    _build(small_knowledge, tmp_path / "idx", first)
    other = FakeEmbedder()
    other.model_id = "another-model"
    report = _build(small_knowledge, tmp_path / "idx", other)
    assert "another-model" in report.rebuild_reason
    assert report.embedded_passages == report.passages
    assert store.load_manifest(tmp_path / "idx").model_id == "another-model"  # type: ignore[union-attr]


def test_missing_and_damaged_indexes_are_named_errors(small_knowledge: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError):
        SearchIndex.open(tmp_path / "idx")
    _build(small_knowledge, tmp_path / "idx", FakeEmbedder())
    live = store.current_version(tmp_path / "idx")
    assert live is not None
    (live / store.MANIFEST_FILE).write_text("{ not json")
    with pytest.raises(IndexCorruptError, match="manifest"):
        SearchIndex.open(tmp_path / "idx")
    (live / store.MANIFEST_FILE).unlink()
    (live / store.VECTORS_FILE).write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(IndexCorruptError):
        SearchIndex.open(tmp_path / "idx")


def test_leftovers_of_a_killed_build_do_not_affect_readers_and_are_cleaned(
    small_knowledge: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "idx"
    _build(small_knowledge, index_dir, FakeEmbedder())
    live = store.current_version(index_dir)
    half = index_dir / ".build-deadbeef0000"
    half.mkdir()
    (half / store.PASSAGES_FILE).write_text('{"source": "x"')
    (index_dir / ".CURRENT.abcd1234").write_text("v-half")
    assert SearchIndex.open(index_dir).manifest.passage_count > 0
    (small_knowledge / "career-ladder.md").write_text("# Ladder\n\n## Levels\nJunior, mid, senior, staff.\n")
    _build(small_knowledge, index_dir, FakeEmbedder())
    assert not half.exists() and not (index_dir / ".CURRENT.abcd1234").exists()
    assert store.current_version(index_dir) != live


def test_only_the_last_two_versions_are_kept(small_knowledge: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    for round_number in range(4):
        (small_knowledge / "career-ladder.md").write_text(
            f"# Ladder\n\n## Round\nRound {round_number} text.\n"
        )
        _build(small_knowledge, index_dir, FakeEmbedder())
        time.sleep(0.01)
    versions = sorted(p.name for p in index_dir.glob("v-*"))
    assert len(versions) == 2
    assert store.current_version(index_dir).name in versions  # type: ignore[union-attr]
    manifest = json.loads((store.current_version(index_dir) / "manifest.json").read_text())  # type: ignore[operator]
    assert manifest["format_version"] == store.FORMAT_VERSION


def test_large_sentence_files_are_read_per_passage_with_the_same_rows(
    small_knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = FakeEmbedder()
    _build(small_knowledge, tmp_path / "idx", embedder)
    in_memory = SearchIndex.open(tmp_path / "idx")
    monkeypatch.setattr("index.search.SENTENCES_IN_MEMORY_BYTES", 0)  # as if the file were large
    read_per_passage = SearchIndex.open(tmp_path / "idx")
    assert not in_memory.sentences.read_per_passage
    assert read_per_passage.sentences.read_per_passage
    for pid in range(len(in_memory.passages)):
        assert np.array_equal(in_memory.sentence_rows(pid), read_per_passage.sentence_rows(pid))
    # several passages at once (the token match reads its candidates so): the same rows, in the order asked
    for ids in ([2, 0, 1], [1, 1], [len(in_memory.passages) - 1], []):
        for rows in (in_memory.sentences, read_per_passage.sentences):
            stacked, counts = rows.stacked(ids)
            assert counts == [len(in_memory.sentence_rows(pid)) for pid in ids]
            expected = [in_memory.sentence_rows(pid) for pid in ids]
            assert np.array_equal(stacked, np.concatenate(expected) if ids else stacked[:0])


# -- an index folder that cannot be written: one line, no traceback -----------------------------------


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("rolecall: error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("command", ["index", "ask"])
def test_an_index_folder_that_cannot_be_created_is_one_error_line(
    command: str, small_knowledge: Path, tmp_path: Path
) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    index_dir = parent / "idx"
    argv = ["--knowledge", str(small_knowledge), "--index", str(index_dir)]
    argv = ["index", *argv] if command == "index" else ["ask", "pay?", *argv]
    parent.chmod(0o555)
    try:
        done = rolecall_bound_by_file_modes(argv)
    finally:
        parent.chmod(0o755)
    assert done.returncode == 2, done.stderr
    line = _one_error_line(done.stderr)
    assert line == f"rolecall: error: cannot write the index folder {index_dir}: permission denied"
    if command == "index":
        assert done.stderr.splitlines() == [line]
    else:  # told first that there is no index and one is being built
        assert done.stderr.splitlines()[0].startswith(f"no index in {index_dir}")
    assert not index_dir.exists()


def test_a_read_only_index_folder_is_one_error_line(small_knowledge: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    index_dir.mkdir(mode=0o555)  # no .lock can be created in it
    try:
        done = rolecall_bound_by_file_modes(
            ["index", "--knowledge", str(small_knowledge), "--index", str(index_dir)]
        )
    finally:
        index_dir.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"rolecall: error: cannot write the index folder {index_dir}: permission denied"
    ]


def test_a_read_only_index_is_one_error_line_and_its_live_version_serves(
    small_knowledge: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "idx"
    make_service(small_knowledge, index_dir, FakeEmbedder()).reindex()
    live = store.current_version(index_dir)
    write_docs(small_knowledge, {"new-role.md": "# New Role\n\n## Work\nA new role builds new things.\n"})
    index_dir.chmod(0o555)  # the lock file is there; no version folder can be created
    try:
        done = rolecall_bound_by_file_modes(
            ["index", "--knowledge", str(small_knowledge), "--index", str(index_dir)]
        )
    finally:
        index_dir.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert _one_error_line(done.stderr) == (
        f"rolecall: error: cannot write the new index version in {index_dir} (Permission denied);"
        " the previous one stays live"
    )
    assert done.stderr.splitlines()[-1].startswith("rolecall: error: ")  # after the progress lines
    assert store.current_version(index_dir) == live and not list(index_dir.glob(".build-*"))
    assert len(SearchIndex.open(index_dir)) > 0


@pytest.mark.parametrize("where", ["the folder", "a folder inside"])
@pytest.mark.parametrize("command", ["index", "ask"])
def test_a_file_where_the_index_folder_should_be_is_one_error_line(
    command: str,
    where: str,
    small_knowledge: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.cli.RolecallService", lambda config: RolecallService(config, FakeEmbedder()))
    plain_file = tmp_path / "afile"
    plain_file.write_text("not an index\n")
    index_dir = plain_file if where == "the folder" else plain_file / "idx"
    argv = ["--knowledge", str(small_knowledge), "--index", str(index_dir)]
    assert main(["index", *argv] if command == "index" else ["ask", "pay?", *argv]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [  # said before anything is read or built
        f"rolecall: error: cannot use the index folder {index_dir}: {plain_file} is a file, not a folder"
        " (point --index or ROLECALL_INDEX_DIR at a folder)"
    ]
    assert plain_file.read_text() == "not an index\n"
