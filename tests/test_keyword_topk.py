"""Keyword search: scores equal bm25s's own; the argpartition top-k is exactly a full stable sort's first k; rare words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.keyword import KeywordIndex, tokenize


def _stable_top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[: max(k, 0)]


@pytest.mark.parametrize("seed", range(20))
def test_top_k_equals_a_full_stable_sort_on_arrays_full_of_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for size in (1, 2, 5, 39, 40, 41, 100, 1000, 5000):
        # few distinct values, so the k-th best score is almost always shared by many passages;
        # zeros dominate, as for BM25 when most passages hold no query term
        distinct = rng.integers(1, 6)
        scores = (rng.integers(0, distinct + 1, size) * rng.random() * 3).astype(np.float32)
        scores[rng.random(size) < 0.5] = 0.0
        for k in (0, 1, 3, 10, 40, size - 1, size, size + 5):
            got = KeywordIndex.top(scores, k)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, _stable_top(scores, k), err_msg=f"size {size} k {k}")


def test_top_k_of_equal_and_empty_arrays() -> None:
    np.testing.assert_array_equal(KeywordIndex.top(np.full(100, 2.5, dtype=np.float32), 40), np.arange(40))
    np.testing.assert_array_equal(KeywordIndex.top(np.zeros(0, dtype=np.float32), 40), np.zeros(0))
    scores = np.array([1, 3, 3, 2, 3], dtype=np.float32)
    np.testing.assert_array_equal(KeywordIndex.top(scores, 2), [1, 2])
    np.testing.assert_array_equal(KeywordIndex.top(scores, 4), [1, 2, 4, 3])


def test_identical_passages_rank_by_passage_id_through_real_bm25() -> None:
    texts = ["kubernetes terraform prometheus"] * 30 + ["kubernetes"] * 30 + ["unrelated words here"] * 30
    order = list(range(len(texts)))
    rng = np.random.default_rng(0)
    rng.shuffle(order)
    keyword = KeywordIndex.build([texts[i] for i in order])
    scores = keyword.scores("kubernetes terraform")
    got = KeywordIndex.top(scores, 40)
    np.testing.assert_array_equal(got, _stable_top(scores, 40))
    assert all(order[i] < 30 for i in got[:30]) and all(30 <= order[i] < 60 for i in got[30:])
    assert list(got[:30]) == sorted(got[:30]) and list(got[30:]) == sorted(got[30:])


def test_scores_read_from_the_saved_arrays_equal_bm25s_own(tmp_path: Path) -> None:
    """Answering reads bm25s's saved arrays with numpy; every score must equal bm25s.get_scores exactly."""
    import bm25s

    from index.keyword import tokenize

    texts = [
        "Senior back-end engineers earn $120,000 to $150,000 and own services end to end.",
        "Kubernetes, Terraform and AWS: the platform team's daily tools, and Kubernetes upgrades.",
        "A staff engineer writes design documents, reviews design documents, and mentors seniors.",
        "Test-driven development (TDD) and code review keep the service healthy.",
        "Engineering managers run one-on-ones, hiring loops and performance reviews.",
    ] * 3
    built = KeywordIndex.build(texts)
    built.save(tmp_path)
    loaded = KeywordIndex.load(tmp_path, len(texts))
    reference = bm25s.BM25.load(str(tmp_path))
    questions = [
        "kubernetes kubernetes upgrades",
        "what does a staff engineer do with design documents",
        "$120,000 senior pay",
        "TDD and code review",
        "banana bread",
        "manager hiring performance reviews mentors",
    ]
    for question in questions:
        terms = [t for t in tokenize(question) if t in reference.vocab_dict]
        expected = reference.get_scores(terms) if terms else np.zeros(len(texts), dtype=np.float32)
        for index in (built, loaded):
            got = index.scores(question)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, expected, err_msg=question)
    assert loaded.scores("kubernetes").argmax() == 1


def test_the_same_passages_give_byte_identical_keyword_files_in_any_process(tmp_path: Path) -> None:
    """A rebuild of unchanged knowledge writes the same files, whatever the process's hash seed (bm25s
    alone numbers terms in set order, which changes with it), and scores as bm25s's own indexing does."""
    import json
    import os
    import subprocess
    import sys

    import bm25s

    from index.keyword import tokenize

    texts = [
        "Senior back-end engineers earn $120,000 to $150,000 and own services end to end.",
        "Kubernetes, Terraform and AWS: the platform team's daily tools.",
        "A staff engineer writes design documents and mentors seniors.",
        "",
    ]
    script = (
        "import sys, json; from pathlib import Path; from index.keyword import KeywordIndex; "
        "KeywordIndex.build(json.loads(sys.argv[1])).save(Path(sys.argv[2]))"
    )
    root = Path(__file__).resolve().parents[1]
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(texts), str(tmp_path / seed)],
            check=True,
            cwd=root,
            env=env,
        )
    files = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert "vocab.index.json" in files and files == sorted(p.name for p in (tmp_path / "2").iterdir())
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name

    own = bm25s.BM25()
    own.index([tokenize(t) or ["\u2205"] for t in texts], show_progress=False)
    loaded = KeywordIndex.load(tmp_path / "1", len(texts))
    for question in ("kubernetes tools", "staff engineer design documents", "$120,000 senior", "banana"):
        terms = [t for t in tokenize(question) if t in own.vocab_dict]
        expected = own.get_scores(terms) if terms else np.zeros(len(texts), dtype=np.float32)
        np.testing.assert_array_equal(loaded.scores(question), expected, err_msg=question)


def test_a_word_is_rare_when_at_most_two_passages_hold_it_and_never_in_a_small_collection() -> None:
    filler = [f"passage {i} about code review and testing" for i in range(60)]
    texts = [
        *filler,
        "implement debounce for a search box",
        "debounce and throttle",
        "throttle once more",
        "throttle",
    ]
    keyword = KeywordIndex.build(texts)
    assert keyword.rare(tokenize("debounce throttle review")) == {"debounc"}
    assert "debounc" in keyword.rare_vocabulary() and "throttl" not in keyword.rare_vocabulary()
    # In ten passages, two of them is a fifth of the collection: nothing is rare there.
    assert KeywordIndex.build(texts[-10:]).rare(tokenize("debounce")) == frozenset()
