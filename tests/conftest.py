"""Shared fixtures: an isolated environment, the real packaged model, a deterministic fake embedder."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.answer import Answer
from bot.service import RolecallService, ServiceConfig
from bot.settings import Settings
from index.embedding import SentenceTransformerEmbedder, Vectors, resolve_model

REPO = Path(__file__).resolve().parent.parent
BUNDLED_KNOWLEDGE = REPO / "knowledge"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads the developer's settings or tokens, or writes outside its tmp folder."""
    for name in list(os.environ):
        if name.startswith(("ROLECALL_", "SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROLECALL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [
        h for h in root.handlers if h not in handlers
    ]:  # a serve() run in-process sets up logging
        root.removeHandler(handler)
    root.setLevel(level)


class FakeEmbedder:
    """Deterministic bag-of-words vectors: for tests about storage and flow, not about meaning."""

    model_id = "fake-embedder"
    dimension = 64

    def __init__(self) -> None:
        self.embedded_documents = 0

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> Vectors:
        self.embedded_documents += len(texts)
        return self._vectors(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._vectors(texts)

    def _vectors(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms == 0, 1, norms)).astype(np.float32)


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    embedder = SentenceTransformerEmbedder(resolve_model(None))
    embedder.embed_queries(["warm up"])
    return embedder


def write_docs(folder: Path, docs: dict[str, str]) -> Path:
    """Write {relative path: text} under folder and return folder."""
    for name, text in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


SMALL_KNOWLEDGE = {
    "senior-back-end-engineer.md": """---
title: Senior Back-End Software Engineer
aliases: [Senior Backend Engineer, Sr. Back-End Engineer]
level: senior
family: back-end
---
# Senior Back-End Software Engineer

A senior back-end engineer builds the server side of products: APIs, databases and the services behind them.

## Pay
In the United States a senior back-end software engineer earns about $120,000 a year on average (2023 job-listing data). Pay is higher in San Francisco and New York City.

## Tools
Typical tools are Git for version control, PostgreSQL and MySQL databases, Django and Spring frameworks, and Jira for tracking work.
""",
    "site-reliability-engineer.md": """---
title: Site Reliability / DevOps Engineer
aliases: [SRE, DevOps Engineer]
level: senior
family: operations
---
# Site Reliability / DevOps Engineer

## Responsibilities
A site reliability engineer keeps production systems available. They define service level objectives, run the on-call rotation and lead incident reviews.

## Tools
Site reliability engineers run containers on Kubernetes, describe infrastructure with Terraform and watch systems with Prometheus and Grafana dashboards.
""",
    "career-ladder.md": """---
title: Engineering Career Ladder
level: ladder
---
# Engineering Career Ladder

## From senior to staff
Moving from senior to staff engineer means leading technical work that spans several teams. Promotion committees look for evidence that you already operate at the staff level, usually collected in a promotion packet.
""",
}


@pytest.fixture
def small_knowledge(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "knowledge", SMALL_KNOWLEDGE)


DEFAULT_MIN_SCORE: float = Settings.model_fields["min_score"].default
DEFAULT_SUPPORT_SCORE: float = Settings.model_fields["support_score"].default
DEFAULT_NEAREST_SCORE: float = Settings.model_fields["nearest_score"].default


def make_service(knowledge: Path, index_dir: Path, embedder: object, **overrides: object) -> RolecallService:
    """A service over explicit folders, without reading the environment."""
    config = ServiceConfig(
        knowledge_dirs=(knowledge,),
        index_dir=index_dir,
        model="",
        top_k=3,
        min_score=float(overrides.get("min_score", DEFAULT_MIN_SCORE)),  # type: ignore[arg-type]
        support_score=float(overrides.get("support_score", DEFAULT_SUPPORT_SCORE)),  # type: ignore[arg-type]
        nearest_score=float(overrides.get("nearest_score", DEFAULT_NEAREST_SCORE)),  # type: ignore[arg-type]
        max_file_bytes=20 * 1024 * 1024,
    )
    return RolecallService(config, embedder)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def bundled(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> RolecallService:
    """A service over the bundled knowledge with the real model, built once for the run; tests only ask it."""
    service = make_service(BUNDLED_KNOWLEDGE, tmp_path_factory.mktemp("bundled") / "idx", real_embedder)
    service.open()
    return service


# `rolecall` (bot.cli.main) in a child process, answering with the fake embedder.
_CLI_SCRIPT = """
import sys
import bot.cli
from bot.service import RolecallService
from tests.conftest import FakeEmbedder
bot.cli.RolecallService = lambda config: RolecallService(config, FakeEmbedder())
sys.exit(bot.cli.main(sys.argv[1:]))
"""


def rolecall_bound_by_file_modes(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`rolecall` in a child that file modes apply to: as root, with its permission override dropped."""
    drop = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores file modes and setpriv is not installed to drop that")
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [*drop, sys.executable, "-c", _CLI_SCRIPT, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def held_answers(service: RolecallService, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The chat adapters' answers wait until the returned event is set: what a test sees happen before it
    (an acknowledgement, a deferral) cannot have waited for the answer."""
    release = asyncio.Event()
    search = service.ask_async

    async def held(question: str, k: int | None = None) -> Answer:
        await release.wait()
        return await search(question, k)

    monkeypatch.setattr(service, "ask_async", held)
    return release
