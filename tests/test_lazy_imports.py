"""Commands that need no model, and answers once the ONNX export is cached, never import torch (nor bm25s and scipy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

HEAVY = ("torch", "sentence_transformers", "transformers", "bm25s", "scipy")  # bm25s, scipy: only to build
SCRIPT = (
    "import sys\n"
    "from bot.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    "raise SystemExit(code)\n"
)


def _rolecall(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_unchanged_reindex_and_ask_import_no_torch(small_knowledge: Path, tmp_path: Path) -> None:
    where = ["--knowledge", str(small_knowledge), "--index", str(tmp_path / "idx")]
    first = _rolecall("index", *where)  # builds, and exports the model to ONNX (that needs torch)
    heavy_line = next(line for line in first.splitlines() if line.startswith("HEAVY"))
    assert "'torch'" in heavy_line  # the probe sees torch when the first build exports the model
    again = _rolecall("index", *where)
    assert "(0 embedded)" in again and "HEAVY []" in again
    answer = _rolecall("ask", "What does a senior back-end engineer earn?", *where)
    assert "$120,000" in answer and "HEAVY []" in answer
