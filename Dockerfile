# flowgen for GPU clusters. The torch wheel carries its own CUDA 13.0 runtime libraries, so the
# host needs only an NVIDIA driver and the NVIDIA container toolkit (`docker run --gpus all`).
#   docker build -t flowgen .
#   docker run --gpus all -v $PWD/checkpoints:/app/checkpoints -v $PWD/outputs:/app/outputs \
#       flowgen trainer=gpu data=cifar10
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WANDB_MODE=offline

RUN useradd --create-home --uid 1000 flowgen
WORKDIR /app

# The same pinned requirements the README's install uses; a layer of its own so that code
# changes do not reinstall torch.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=flowgen:flowgen . .
RUN pip install --no-cache-dir --no-deps -e . \
    && mkdir -p /app/checkpoints /app/outputs /app/data/torchvision \
    && chown -R flowgen:flowgen /app/checkpoints /app/outputs /app/data

USER flowgen
VOLUME ["/app/data/torchvision", "/app/checkpoints", "/app/outputs"]
ENTRYPOINT ["python", "train.py"]
