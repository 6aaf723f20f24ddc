"""Retrieval core: documents -> passages -> vectors -> hybrid search -> index files on disk."""
