"""The `rolecall` command line: index, ask, chat, eval, serve, feedback and audit."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO, TypeVar

from bot.admin import report_text
from bot.answer import Answer, cut_note, cut_question
from bot.console import asked_line, chat_loop, is_styled, render_answer, render_table
from bot.evaluation import evaluate, read_cases
from bot.records import RecordStore
from bot.service import RolecallService, ServiceConfig, readable_text
from bot.settings import Settings, load_settings
from index.errors import RolecallError

T = TypeVar("T")
MAX_K = 10  # as ROLECALL_TOP_K
EMPTY_QUESTION = "the question is empty: rolecall ask \"what does an SRE do?\", or '-' to read from stdin"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.handler(args, settings))
    except RolecallError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"rolecall: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # the shell's prompt on a line of its own, not after "you> ^C"
        return 130
    except BrokenPipeError:
        # The reader went away (`rolecall ask - | head -1`): stop quietly, as a program killed by SIGPIPE.
        _discard_stdout()
        return 141


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (tests): nothing is flushed to a pipe at exit
        pass


def _path(text: str) -> Path:
    """A folder or file option: an empty value is a mistake (it would mean the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; leave the option out to use the default")
    return Path(text)


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from `low` (to `high`)."""
    wanted = f"{low} to {high}" if high is not None else f"{low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {wanted}, not {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected a whole number {wanted}, not {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rolecall", description="Career answers from your role documents.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_locations(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--knowledge",
            action="append",
            type=_path,
            metavar="DIR",
            help="knowledge folder (repeatable; default ROLECALL_KNOWLEDGE_DIR or the bundled one)",
        )
        sub.add_argument(
            "--index", type=_path, metavar="DIR", help="index folder (default ROLECALL_INDEX_DIR)"
        )

    index = commands.add_parser("index", help="build or refresh the index from the knowledge folders")
    with_locations(index)
    index.set_defaults(handler=_cmd_index)

    ask = commands.add_parser("ask", help="answer one question, or one per line from stdin with '-'")
    ask.add_argument("question", help="the question, or '-' to read questions from stdin")
    ask.add_argument(
        "-k",
        type=_whole_number(1, MAX_K),
        default=None,
        metavar="N",
        help=f"passages to return, 1 to {MAX_K} (default: ROLECALL_TOP_K, 3 unless set)",
    )
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    with_locations(ask)
    ask.set_defaults(handler=_cmd_ask)

    chat = commands.add_parser("chat", help="an interactive console conversation")
    with_locations(chat)
    chat.set_defaults(handler=_cmd_chat)

    evaluation = commands.add_parser(
        "eval", help="hit@1, hit@3, MRR (per passage and per document) and abstention over a JSONL file"
    )
    evaluation.add_argument("file", type=_path)
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluation.add_argument(
        "--misses",
        action="store_true",
        help="list the questions not answered in the top 3, with what was shown first",
    )
    with_locations(evaluation)
    evaluation.set_defaults(handler=_cmd_eval)

    serve = commands.add_parser(
        "serve", help="run the configured chat adapters (Slack, Discord) with /healthz and /metrics"
    )
    serve.set_defaults(handler=_cmd_serve)

    feedback = commands.add_parser("feedback", help="print the stored 👍/👎 votes as a table")
    feedback.add_argument(
        "--last", type=_whole_number(1), default=None, metavar="N", help="only the N most recent"
    )
    feedback.set_defaults(handler=_cmd_feedback)

    audit = commands.add_parser("audit", help="print the audited admin actions as a table")
    audit.add_argument(
        "--last", type=_whole_number(1), default=None, metavar="N", help="only the N most recent"
    )
    audit.set_defaults(handler=_cmd_audit)
    return parser


def _service(args: argparse.Namespace, settings: Settings) -> RolecallService:
    config = ServiceConfig.from_settings(settings)
    if getattr(args, "knowledge", None):
        config = ServiceConfig(**{**config.__dict__, "knowledge_dirs": tuple(args.knowledge)})
    if getattr(args, "index", None):
        config = ServiceConfig(**{**config.__dict__, "index_dir": args.index})
    return RolecallService(config)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _opened(args: argparse.Namespace, settings: Settings) -> RolecallService:
    service = _service(args, settings)
    service.open(notify=_say)
    return service


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    service = _service(args, settings)
    on_terminal = sys.stderr.isatty()
    try:  # progress lines on stderr for logs, cron and Docker too; the bar only on a terminal
        report = service.reindex(progress=_say, show_progress_bar=on_terminal)
        print(f"index {service.config.index_dir}")
        if service.uses_qdrant:
            print(f"answering from Qdrant: {service.live_collection()}")
        print(report_text(report))
    finally:
        service.close()
    return 0


def _tolerant(stream: TextIO) -> TextIO:
    """stdin that reads bytes which are not UTF-8 as U+FFFD instead of failing (a strict locale's default)."""
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(errors="replace")
    return stream


def _clean(question: str) -> str:
    """The question as it will be asked: control characters and lone surrogates replaced, then stripped."""
    return readable_text(question).strip()


def _ask(service: RolecallService, question: str, k: int | None, limit: int) -> Answer:
    """As the chat adapters ask: a question longer than ROLECALL_MAX_QUESTION_CHARS is cut, with a note."""
    text, was_cut = cut_question(question, limit)
    answer = service.ask(text, k)
    if was_cut:
        answer = replace(answer, notes=(*answer.notes, cut_note(len(text), len(question), limit)))
    return answer


def _stdin_questions() -> Iterator[str]:
    """The non-blank lines of stdin, read as they come (a terminal gets each answer in turn)."""
    stdin = _tolerant(sys.stdin)
    if stdin.isatty():
        _say("reading questions from the terminal, one question per line; Ctrl-D to finish")
    return (q for q in (_clean(line) for line in stdin) if q)


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    if args.question == "-":
        questions = _stdin_questions()
        first = next(questions, None)
        if first is None:
            raise RolecallError(
                'no question on stdin: one per line, e.g. echo "what does an SRE do?" | rolecall ask -'
            )
        questions = itertools.chain([first], questions)
    else:
        question = _clean(args.question)
        if not question:
            raise RolecallError(EMPTY_QUESTION)
        questions = iter([question])
    service = _opened(args, settings)  # after the question is known to be there: no index built for nothing
    styled = is_styled(sys.stdout)
    from_stdin = args.question == "-"
    for number, question in enumerate(questions):
        answer = _ask(service, question, args.k, settings.max_question_chars)
        if args.json:  # the JSON object holds its question
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
            continue
        if from_stdin:  # several answers: each under its question, a blank line between them
            print(f"\n{asked_line(question)}" if number else asked_line(question))
        print(render_answer(answer, styled), flush=True)
    return 0


def _cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    service = _opened(args, settings)
    stdin = _tolerant(sys.stdin)
    chat_loop(lambda question: _ask(service, question, None, settings.max_question_chars), stdin, sys.stdout)
    if stdin.isatty():
        print()  # after Ctrl-D at "you> ", the shell's prompt on a line of its own
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    cases = read_cases(args.file)
    if not cases:
        raise RolecallError(
            f"no questions in eval file {args.file}: one JSON object per line, as in eval/README.md"
        )
    service = _opened(args, settings)
    indexed = {document.source for document in service.retriever.index.documents}
    unknown = sorted({source for case in cases for source in case.sources} - indexed)
    if unknown:  # a typo or another corpus: every question naming only these is a miss
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        _say(
            f"warning: {args.file} names sources that are not in the index, so their questions count as misses: {shown}"
        )
    result = evaluate(cases, service.ask_many)
    if args.json:
        print(json.dumps(result.figures()))
    else:
        print(f"{args.file}: {result.summary()}")
    if args.misses:
        for miss in result.misses:
            print(f"  miss: {miss}")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.serve import serve

    return serve(settings)


def _read_store(store: RecordStore, read: Callable[[], list[T]]) -> list[T]:
    """Rows from the record store; none when it does not exist yet, a one-line error when unreadable."""
    try:
        if not store.database.exists():
            return []
        return read()
    except store.database.errors as exc:  # OSError among them: a data folder this user may not read
        raise RolecallError(
            f"cannot read the record store {store.database.describe()}: {store.database.redact(str(exc))}"
        ) from None


def _cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    store = RecordStore(settings.database)
    votes = _read_store(store, store.votes)
    if not votes:
        print(f"no feedback votes yet ({store.database.describe()})")
        return 0
    shown = votes[-args.last :] if args.last else votes
    rows = [(v.at, v.platform, v.user_hash, v.vote, v.question, ", ".join(v.sources)) for v in shown]
    print(render_table(("time (UTC)", "platform", "user", "vote", "question", "sources"), rows))
    ups = sum(1 for v in votes if v.vote == "up")
    print(f"\n{len(votes)} votes: {ups} up, {len(votes) - ups} down")
    return 0


def _cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    store = RecordStore(settings.database)
    entries = _read_store(store, store.audit_entries)
    if not entries:
        print(f"no admin actions recorded yet ({store.database.describe()})")
        return 0
    shown = entries[-args.last :] if args.last else entries
    rows = [(e.at, e.platform, e.user_hash, e.action, e.result, e.detail) for e in shown]
    print(render_table(("time (UTC)", "platform", "user", "action", "result", "detail"), rows))
    print(f"\n{len(entries)} admin action{'s' if len(entries) != 1 else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
