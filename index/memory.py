"""Give the heap's free pages back to the system after a build, so a serving process shrinks again."""

from __future__ import annotations


def return_free_memory() -> None:
    """glibc's malloc_trim(0): free pages at the top and inside the heap go back to the system; a no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # pragma: no cover - not glibc
        pass
