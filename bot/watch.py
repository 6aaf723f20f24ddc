"""ROLECALL_WATCH: reindex in the background when a knowledge folder changes (watchfiles, debounced)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from bot.service import ReindexBusyError, RolecallService
from index.errors import RolecallError

log = logging.getLogger(__name__)

DEBOUNCE_MS = 2000  # changes within this window (a git pull, a copied folder) make one reindex
BUSY_RETRY_SECONDS = 5.0
BUSY_RETRIES = 60  # an admin's reindex running: wait for it, at most about five minutes
REARM_SECONDS = 2.0  # how often where each knowledge path leads is looked at


async def watch_knowledge(
    service: RolecallService,
    stop: asyncio.Event,
    debounce_ms: int = DEBOUNCE_MS,
    rearm_seconds: float = REARM_SECONDS,
) -> None:
    """Reindex after each burst of changes until `stop` is set; a failed reindex keeps the old index.

    A folder's changes are watched on the folder itself, not its path: a folder deleted and made again,
    or a link swapped to another release, would go unwatched. So where each path leads is looked at every
    `rearm_seconds`; when it changes, or a missing folder appears, watching starts again on what the paths
    lead to now, with a reindex once every folder is there.
    """
    from watchfiles import awatch

    configured = list(service.config.knowledge_dirs)
    watched: tuple[object, ...] | None = None
    while not stop.is_set():
        now = _where(configured)
        folders = [folder for folder in configured if folder.is_dir()]
        missing = ", ".join(str(folder) for folder in configured if folder not in folders)
        # after a move, the reindex runs once the new folders are watched: a change made between the two
        # would be in neither
        moved_here = watched is not None and now != watched and not missing
        if watched is not None and now != watched:
            if missing:
                log.warning("knowledge folder %s is gone; watching for it to come back", missing)
            else:
                log.info("knowledge folders replaced or back; watching them again and reindexing")
        elif watched is None and missing:
            log.warning("ROLECALL_WATCH: knowledge folder %s not found; watching for it", missing)
        watched = now
        moved = asyncio.Event()
        looking = asyncio.create_task(_until_moved(configured, now, stop, moved, rearm_seconds))
        try:
            if not folders:
                await moved.wait()
                continue
            log.info("watching %s for changes", ", ".join(str(f) for f in folders))
            # an empty set every rearm_seconds while nothing changes: the first one says watching has begun
            async for changes in awatch(
                *folders,
                debounce=debounce_ms,
                stop_event=moved,
                rust_timeout=int(rearm_seconds * 1000),
                yield_on_timeout=moved_here,
            ):
                if changes:
                    log.info("knowledge changed (%d paths); reindexing", len(changes))
                elif not moved_here:
                    continue
                moved_here = False
                await _reindex(service, stop)
        except (OSError, RuntimeError) as exc:  # the watching itself failed: look again in a moment
            log.error("watching the knowledge folders failed (%s); trying again in %g s", exc, rearm_seconds)
            await moved.wait()
        finally:
            looking.cancel()


def _where(folders: list[Path]) -> tuple[object, ...]:
    """Where each path leads now: the folder it resolves to and that folder's identity (None if missing)."""
    places: list[object] = []
    for folder in folders:
        try:
            info = folder.stat()
            places.append((str(folder.resolve()), info.st_dev, info.st_ino))
        except OSError:
            places.append(None)
    return tuple(places)


async def _until_moved(
    folders: list[Path], watched: tuple[object, ...], stop: asyncio.Event, moved: asyncio.Event, every: float
) -> None:
    """Set `moved` when `stop` is set or a path leads somewhere else than `watched`."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        if stop.is_set() or await asyncio.to_thread(_where, folders) != watched:
            moved.set()
            return


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
