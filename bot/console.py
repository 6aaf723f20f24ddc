"""Terminal rendering of answers and the interactive console chat."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from bot.answer import Answer, context_around

BOLD, DIM, RESET = "\033[1m", "\033[2m", "\033[0m"


def render_answer(answer: Answer, styled: bool) -> str:
    """An answer as terminal text; the highlighted sentence in bold when `styled`."""
    if not answer.answered:  # a note ("your question was cut") explains a refusal too
        return "\n\n".join([*(f"({note})" for note in answer.notes), answer.refusal_text()])
    bold, dim, reset = (BOLD, DIM, RESET) if styled else ("", "", "")
    blocks: list[str] = []
    for number, hit in enumerate(answer.hits, start=1):
        before, highlight, after = context_around(hit.passage.text, hit.highlight)
        body = f"{before}{bold}{highlight}{reset}{after}".strip().replace("\n", "\n   ")
        blocks.append(
            f"{number}. {bold}{hit.passage.section}{reset}\n"
            f"   {body}\n"
            f"   {dim}source: {hit.passage.source}{reset}"
        )
    blocks.extend(f"({note})" for note in answer.notes)
    return "\n\n".join(blocks)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], max_cell: int = 60) -> str:
    """Rows as aligned plain-text columns; a cell longer than `max_cell` ends in …, line breaks become spaces."""

    def cell(value: str) -> str:
        flat = " ".join(str(value).split())
        return flat if len(flat) <= max_cell else flat[: max_cell - 1] + "…"

    body = [[cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in body)])


def asked_line(question: str) -> str:
    """The question above its answer when questions come from a pipe (no terminal echoes them)."""
    return f"you> {question}"


def is_styled(stream: TextIO) -> bool:
    """Bold and colour only on a terminal."""
    return stream.isatty()


def chat_loop(ask: Callable[[str], Answer], stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """Read questions until EOF or 'quit', print each answer."""
    styled = is_styled(stdout)
    interactive = stdin.isatty()
    if interactive:
        stdout.write(
            "Rolecall: ask a career question (e.g. 'What does a senior back-end engineer earn?').\n"
            "Type 'quit' or press Ctrl-D to leave.\n"
        )
    while True:
        if interactive:
            stdout.write("\nyou> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        if interactive and not line.endswith("\n"):  # Ctrl-D after some text: the answer on its own line
            stdout.write("\n")
        question = line.strip()
        if not question:
            continue
        if question.lower() in {"quit", "exit", ":q"}:
            break
        if not interactive:  # piped: each answer under its question, as a terminal would show them
            stdout.write(f"{asked_line(question)}\n")
        stdout.write(render_answer(ask(question), styled) + ("\n" if interactive else "\n\n"))
        stdout.flush()
