"""The retrieval core's user-facing errors: one tree, each message one clear line.

    RolecallError
     ├── NoDocumentsError      nothing usable in the knowledge folders
     ├── KnowledgeFolderError  a knowledge folder is missing or unreadable
     ├── IndexMissingError     no index has been built yet
     ├── IndexIncompatibleError  built by another model or format version: rebuild
     ├── IndexCorruptError     files on disk are damaged: rebuild
     └── ModelLoadError        the embedding model cannot be loaded offline

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class RolecallError(Exception):
    """An expected failure whose message is shown to the user as is."""


class NoDocumentsError(RolecallError):
    """The knowledge folders hold no document that could be loaded."""


class KnowledgeFolderError(RolecallError):
    """A knowledge folder does not exist or cannot be read."""


class IndexMissingError(RolecallError):
    """No index exists at the given location."""


class IndexIncompatibleError(RolecallError):
    """The index on disk was built with another model or format version."""


class IndexCorruptError(RolecallError):
    """The index on disk cannot be read."""


class ModelLoadError(RolecallError):
    """The embedding model cannot be loaded from local files."""
