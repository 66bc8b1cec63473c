# flowgen for GPU clusters, on the smallest CUDA image matching the torch build in requirements.txt
# (torch 2.14.1 = cu130, CUDA 13.0 update 2): the "base" flavour, without the runtime libraries,
# because the torch wheel brings its own CUDA/cuDNN/NCCL. The base still adds the NVIDIA container
# settings, including NVIDIA_REQUIRE_CUDA=cuda>=13.0, so a host driver too old for CUDA 13 fails
# at `docker run` with a clear message instead of deep inside torch. Host needs: NVIDIA driver +
# container toolkit.
#   docker build -t flowgen .
#   docker run --gpus all --shm-size=8g -v "$PWD/checkpoints:/app/checkpoints" \
#       -v "$PWD/outputs:/app/outputs" -v "$PWD/data/torchvision:/app/data/torchvision" \
#       -e WANDB_MODE=online -e WANDB_API_KEY flowgen flowgen-train trainer=ddp data=cifar10
#   docker run --gpus all -v "$PWD/checkpoints:/app/checkpoints" -v "$PWD/outputs:/app/outputs" \
#       flowgen flowgen-sample ckpt=checkpoints/<run>/last.ckpt
# Apptainer (read-only image): apptainer run --nv --env FLOWGEN_HOME=$PWD flowgen.sif flowgen-train
# (FLOWGEN_HOME: where checkpoints/ and outputs/ go; FLOWGEN_DATA_DIR: datasets).
# Other arguments after the image name go to train.py. W&B: WANDB_MODE (offline by default here),
# WANDB_API_KEY, WANDB_ENTITY, ... as environment variables; never bake a key into the image.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM nvidia/cuda:13.0.2-base-ubuntu24.04

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    WANDB_MODE=offline

COPY --from=uv /uv /usr/local/bin/uv

# Python 3.11 (the version the project is tested on; Ubuntu 24.04 has only 3.12) as uv's
# standalone build, outside root's home so the unprivileged user can run it. Ubuntu 24.04 images
# ship a user "ubuntu" with uid 1000: flowgen takes that uid, the usual owner of mounted folders.
RUN uv venv --python 3.11 /opt/venv \
    && if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
    && useradd --create-home --uid 1000 --shell /bin/bash flowgen

WORKDIR /app

# Exactly the pinned requirements the README's install uses; a layer of its own so that code
# changes do not reinstall torch.
COPY requirements.txt .
RUN uv pip install -r requirements.txt

COPY --chown=1000:1000 . .
RUN uv pip install --no-deps -e . \
    && mkdir -p checkpoints outputs multirun data/torchvision \
    && chown -R 1000:1000 /app

USER 1000:1000
# Datasets torchvision downloads, checkpoints, run outputs (samples, logs, W&B offline runs).
VOLUME ["/app/data/torchvision", "/app/checkpoints", "/app/outputs", "/app/multirun"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
