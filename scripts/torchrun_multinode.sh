#!/usr/bin/env bash
# Multi-node DDP with torchrun (no scheduler). Run the same command on every node:
#   NNODES=2 NPROC_PER_NODE=8 MASTER_ADDR=node0.example RUN_NAME=big \
#       scripts/torchrun_multinode.sh experiment=glow_cifar10
# torchrun sets RANK/LOCAL_RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, which Lightning detects
# (TorchElasticEnvironment) instead of launching processes itself. Set the same RUN_NAME on
# every node (default: run_name's timestamp differs between nodes) and keep checkpoints/ and
# outputs/ on shared storage, or only node 0's copy matters (rank 0 writes them).
# Each rank logs to outputs/<run_name>/train_rank<global rank>.log (Hydra resolves the
# single-quoted ${oc.env:RANK} in each process).
# data.batch_size is per GPU: global batch = batch_size x NPROC_PER_NODE x NNODES (logged).
set -euo pipefail

NNODES="${NNODES:-1}"
NPROC_PER_NODE="${NPROC_PER_NODE:-$(nvidia-smi --list-gpus 2>/dev/null | wc -l)}"
MASTER_ADDR="${MASTER_ADDR:-localhost}"
MASTER_PORT="${MASTER_PORT:-29500}"
RDZV_ID="${RDZV_ID:-flowgen}"
RUN_NAME="${RUN_NAME:-torchrun-$(date +%Y%m%d-%H%M)}"
export WANDB_MODE="${WANDB_MODE:-offline}"

cd "$(dirname "$0")/.."
# shellcheck disable=SC2016  # ${oc.env:...} is for Hydra, not for this shell
exec torchrun \
    --nnodes="${NNODES}" --nproc_per_node="${NPROC_PER_NODE}" \
    --rdzv_backend=c10d --rdzv_endpoint="${MASTER_ADDR}:${MASTER_PORT}" --rdzv_id="${RDZV_ID}" \
    train.py trainer=ddp trainer.num_nodes="${NNODES}" trainer.devices="${NPROC_PER_NODE}" \
    run_name="${RUN_NAME}" 'hydra.job.name=train_rank${oc.env:RANK}' "$@"
