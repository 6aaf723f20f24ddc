"""Open the vector store the settings choose (ROLECALL_VECTOR_STORE and the ROLECALL_QDRANT_* settings)."""

from __future__ import annotations

from bot.settings import Settings
from index.vector_store import FaissVectorStore, VectorStore


def open_vector_store(settings: Settings, model_id: str, dimension: int) -> VectorStore:
    """An empty-or-live store for `model_id` vectors: FAISS in memory, or Qdrant (server URL, else local folder)."""
    if settings.vector_store == "faiss":
        return FaissVectorStore(dimension)
    from index.qdrant_store import QdrantVectorStore, open_client

    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else ""
    if settings.qdrant_url:
        client = open_client(url=settings.qdrant_url, api_key=api_key)
    else:
        settings.qdrant_path.mkdir(parents=True, exist_ok=True)
        client = open_client(path=str(settings.qdrant_path))
    return QdrantVectorStore(client, model_id, dimension)
