"""ROLECALL_WATCH: reindex in the background when a knowledge folder changes (watchfiles, debounced)."""

from __future__ import annotations

import asyncio
import logging

from bot.service import ReindexBusyError, RolecallService
from index.errors import RolecallError

log = logging.getLogger(__name__)

DEBOUNCE_MS = 2000  # changes within this window (a git pull, a copied folder) make one reindex
BUSY_RETRY_SECONDS = 5.0
BUSY_RETRIES = 60  # an admin's reindex running: wait for it, at most about five minutes


async def watch_knowledge(
    service: RolecallService, stop: asyncio.Event, debounce_ms: int = DEBOUNCE_MS
) -> None:
    """Reindex after each burst of changes until `stop` is set; a failed reindex keeps the old index."""
    from watchfiles import awatch

    folders = [folder for folder in service.config.knowledge_dirs if folder.is_dir()]
    if not folders:
        log.warning("ROLECALL_WATCH: no knowledge folder to watch")
        return
    log.info("watching %s for changes", ", ".join(str(f) for f in folders))
    try:
        async for changes in awatch(*folders, debounce=debounce_ms, stop_event=stop):
            log.info("knowledge changed (%d paths); reindexing", len(changes))
            await _reindex(service, stop)
    except (OSError, RuntimeError) as exc:  # the watching itself failed, e.g. a watched folder was removed
        log.error("ROLECALL_WATCH stopped watching the knowledge folders: %s", exc)


async def _reindex(service: RolecallService, stop: asyncio.Event) -> None:
    """One reindex after a burst of changes; a failure of any kind is logged and watching goes on."""
    for _ in range(BUSY_RETRIES):
        try:
            report = await asyncio.to_thread(service.reindex)
        except ReindexBusyError:
            if stop.is_set():
                return
            await asyncio.sleep(BUSY_RETRY_SECONDS)
            continue
        except RolecallError as exc:
            log.error("reindex after a change failed; the previous index keeps serving: %s", exc)
            return
        except Exception as exc:  # a bug or an unforeseen OSError: keep watching, the next change retries
            log.exception(
                "reindex after a change failed unexpectedly; the previous index keeps serving: %s: %s",
                type(exc).__name__,
                exc,
            )
            return
        log.info("reindex after a change: %s", report.summary())
        return
    log.warning("reindex after a change skipped: another reindex kept running")
