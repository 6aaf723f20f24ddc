"""Questions asked at the same time share one embedding call: leader/follower micro-batching, no timer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.embedding import QueryEmbedding, Vectors

MAX_BATCH = 32


@dataclass
class _Request:
    texts: list[str]
    embedded: QueryEmbedding | None = None
    error: BaseException | None = None
    done: bool = False


class QueryBatcher:
    """embed() from many threads: a caller that finds the model idle embeds at once, with every
    request queued so far (up to `max_batch` texts); callers arriving meanwhile wait for the next
    batch. A lone caller never waits, and nothing is delayed to fill a batch."""

    def __init__(
        self, embed: Callable[[Sequence[str]], Vectors | QueryEmbedding], max_batch: int = MAX_BATCH
    ) -> None:
        """`embed`: embedding.query_embedding(embedder) for token vectors too, or plain embed_queries."""
        self._embed = embed
        self._max_batch = max_batch
        self._condition = threading.Condition(threading.Lock())
        self._queue: list[_Request] = []
        self._running = False
        self.batches = 0  # embedding calls made, and texts embedded (for the benchmark)
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors of these texts, embedded alone or together with other threads' texts."""
        return self.embed_with_tokens(texts).vectors

    def embed_with_tokens(self, texts: Sequence[str]) -> QueryEmbedding:
        """Vectors of these texts and, when the embedding function gives them, their token vectors."""
        request = _Request(list(texts))
        with self._condition:
            self._queue.append(request)
            while not request.done:
                if self._running:
                    self._condition.wait()
                    continue
                self._running = True
                batch = self._take()
                self._condition.release()
                try:
                    self._run(batch)
                finally:
                    self._condition.acquire()
                    self._running = False
                    self._condition.notify_all()
        if request.error is not None:
            raise request.error
        assert request.embedded is not None
        return request.embedded

    def _take(self) -> list[_Request]:
        batch = [self._queue.pop(0)]
        size = len(batch[0].texts)
        while self._queue and size + len(self._queue[0].texts) <= self._max_batch:
            size += len(self._queue[0].texts)
            batch.append(self._queue.pop(0))
        return batch

    def _run(self, batch: list[_Request]) -> None:
        texts = [text for request in batch for text in request.texts]
        try:
            embedded = self._embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch, raised in each
            for request in batch:
                request.error, request.done = exc, True
            return
        self.batches += 1
        self.texts += len(texts)
        if not isinstance(embedded, QueryEmbedding):
            embedded = QueryEmbedding(embedded)
        offset = 0
        for request in batch:
            end = offset + len(request.texts)
            tokens = embedded.tokens[offset:end] if embedded.tokens is not None else None
            request.embedded = QueryEmbedding(embedded.vectors[offset:end], tokens)
            request.done = True
            offset = end
