"""SIGKILL during a build, at points spread over its whole run, never leaves an unloadable index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from index import store
from index.search import SearchIndex
from tests.conftest import REPO, write_docs

BUILD_SCRIPT = """
import sys, time
from pathlib import Path
from index.builder import build_index
from index.embedding import ModelSpec, resolve_model
from tests.conftest import FakeEmbedder

class SlowEmbedder(FakeEmbedder):
    def embed_documents(self, texts, show_progress=False):
        time.sleep(0.3)  # stands in for the model's work, so kills land during embedding too
        return super().embed_documents(texts)

embedder = SlowEmbedder()
spec = ModelSpec(embedder.model_id, resolve_model(None).location)
build_index([Path(sys.argv[1])], Path(sys.argv[2]), spec, lambda: embedder)
print("done", flush=True)
"""


def _docs(round_number: int) -> dict[str, str]:
    body = " ".join(
        f"Fact {i} of round {round_number} about senior engineers and their pay." for i in range(60)
    )
    return {f"role-{n}.md": f"# Role {n}\n\n## Notes\n{body}\n" for n in range(40)}


def _start_build(knowledge: Path, index_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(knowledge), str(index_dir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_any_point_leaves_the_previous_index_loadable(tmp_path: Path) -> None:
    knowledge, index_dir = tmp_path / "knowledge", tmp_path / "idx"
    write_docs(knowledge, _docs(0))
    started = time.monotonic()
    first = _start_build(knowledge, index_dir)
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    full_run = time.monotonic() - started
    baseline = SearchIndex.open(index_dir).manifest.passage_count

    for attempt, fraction in enumerate((0.15, 0.35, 0.55, 0.75, 0.9, 0.97), start=1):
        write_docs(knowledge, _docs(attempt))
        process = _start_build(knowledge, index_dir)
        time.sleep(full_run * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        opened = SearchIndex.open(index_dir)  # old or new version, never a broken one
        assert opened.manifest.passage_count == baseline
        assert len(opened.passages) == len(opened.vectors)

    finisher = _start_build(knowledge, index_dir)
    assert finisher.wait(timeout=120) == 0
    assert not list(index_dir.glob(".build-*"))
    texts = " ".join(p.text for p in SearchIndex.open(index_dir).passages)
    assert "round 6" in texts and store.current_version(index_dir) is not None
