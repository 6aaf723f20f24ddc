"""Admin actions from chat: who may reindex, running it off the event loop, and auditing every attempt."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.logs import error_reference
from bot.records import RecordStore, now
from bot.service import ReindexBusyError, RolecallService
from index.builder import BuildReport
from index.errors import RolecallError

log = logging.getLogger(__name__)


def report_text(report: BuildReport) -> str:
    """The reindex summary an admin reads: counts first, then the skipped files with their reasons (what
    needs acting on, kept when a chat clips a long summary), then each other file by what happened to it."""
    lines = []
    if report.rebuild_reason:
        lines.append(f"rebuilt from scratch: {report.rebuild_reason}")
    lines.append("index updated" if report.wrote_new_version else "index already up to date")
    lines.append(report.summary())
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.extend(f"  skipped: {_shown(skip.source)}: {skip.reason}" for skip in report.skipped)
    for label, names in (("added", report.added), ("changed", report.changed), ("removed", report.removed)):
        lines.extend(f"  {label}: {_shown(name)}" for name in names)
    return "\n".join(lines)


def _shown(file_name: str) -> str:
    """A file name on one line of the summary: a newline or terminal escape in it is spelled out ("\\n")."""
    return file_name if file_name.isprintable() else file_name.encode("unicode_escape").decode("ascii")


@dataclass(frozen=True)
class ReindexOutcome:
    """What happened to one reindex request, and the private message for the requester."""

    result: str  # "allowed", "refused", "busy" or "failed" ("not_run" is only audited, see decline_reindex)
    message: str
    report: BuildReport | None = None
    detail: str = ""  # for the audit row when there is no report


class AdminActions:
    """Permission checks and audited admin commands shared by every chat adapter."""

    def __init__(self, service: RolecallService, records: RecordStore, admins: frozenset[str]) -> None:
        self.service = service
        self.records = records
        self.admins = admins

    def is_admin(self, platform: str, user_id: str, platform_admin: bool = False) -> bool:
        """Listed in ROLECALL_ADMINS as 'platform:id', or an admin by the platform's own rule."""
        return platform_admin or f"{platform}:{user_id}" in self.admins

    async def reindex(self, platform: str, user_id: str, platform_admin: bool = False) -> ReindexOutcome:
        """Reindex if allowed; questions keep being answered from the old index until the swap.

        Every attempt is audited once, with the time it was asked for and its outcome, whatever happens
        (an unexpected error is recorded as failed). The build and its audit row run together in one worker
        thread, off the event loop: a request cancelled while it builds (the adapter stopping) cannot stop
        the build, and it is still audited with what really happened when the build ends.
        """
        asked_at = now()
        return await asyncio.to_thread(self._reindex_and_audit, platform, user_id, platform_admin, asked_at)

    async def decline_reindex(self, platform: str, user_id: str, reason: str) -> None:
        """Audit a reindex request the bot turned away before any check (it was shutting down, or Discord
        refused the acknowledgement): nothing ran."""
        await asyncio.to_thread(
            self.records.record_admin_action, platform, user_id, "reindex", "not_run", reason
        )

    def _reindex_and_audit(
        self, platform: str, user_id: str, platform_admin: bool, asked_at: str
    ) -> ReindexOutcome:
        outcome = self._reindex(platform, user_id, platform_admin)
        detail = outcome.report.summary() if outcome.report is not None else outcome.detail
        self.records.record_admin_action(platform, user_id, "reindex", outcome.result, detail, asked_at)
        return outcome

    def _reindex(self, platform: str, user_id: str, platform_admin: bool) -> ReindexOutcome:
        if not self.is_admin(platform, user_id, platform_admin):
            return ReindexOutcome("refused", "Sorry, only Rolecall admins can reindex the knowledge base.")
        try:
            report = self.service.reindex()
        except ReindexBusyError:
            return ReindexOutcome(
                "busy", "A reindex is already running; I'll keep answering from the current index."
            )
        except RolecallError as exc:
            return ReindexOutcome(
                "failed", f"Reindex failed, the previous index keeps serving: {exc}", detail=str(exc)
            )
        except Exception as exc:  # a bug or an OS error: still audited, and the old index still serves
            reference = error_reference()
            log.exception("reindex from chat failed (ref %s)", reference)
            return ReindexOutcome(
                "failed",
                f"Reindex failed (ref {reference}); the previous index keeps serving.",
                detail=f"{type(exc).__name__} (ref {reference})",
            )
        return ReindexOutcome("allowed", report_text(report), report)
