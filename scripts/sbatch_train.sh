#!/usr/bin/env bash
# Multi-node DDP training under SLURM:  sbatch scripts/sbatch_train.sh [train.py overrides]
#   sbatch --nodes=4 scripts/sbatch_train.sh experiment=glow_cifar10 data.batch_size=16
# srun starts one task per GPU; Lightning reads SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS and the
# node list itself (no torchrun), and checks that devices x num_nodes matches the task count.
# data.batch_size is per GPU: global batch = batch_size x GPUs per node x nodes (logged).
# Directives (sbatch reads them up to the first command; command-line options override them):
# one task per GPU; cpus-per-task feeds data.num_workers; --mem=0 takes each node's memory.
# Time limit and preemption: SIGUSR1 120 s before the limit makes Lightning requeue the job
# (scontrol requeue; --requeue allows it); SLURM then stops it with SIGTERM, on which train.py
# finishes the step under way, writes checkpoints/<RUN_NAME>/last.ckpt and exits 0. The requeued
# job has the same id, hence the same RUN_NAME, and ckpt_path=last resumes it exactly there (a
# first start finds no last.ckpt and starts afresh). Preemption sends SIGTERM directly: the same.
# One step plus a checkpoint write must fit in SLURM's KillWait (30 s unless the cluster says).
#SBATCH --job-name=flowgen
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --mem=0
#SBATCH --time=24:00:00
#SBATCH --signal=SIGUSR1@120
#SBATCH --requeue
#SBATCH --output=slurm-%j.out
#SBATCH --open-mode=append
# Uncomment (drop one #) and set for your cluster:
##SBATCH --partition=gpu
##SBATCH --account=myproject
set -euo pipefail

cd "${SLURM_SUBMIT_DIR:-.}"
# shellcheck disable=SC1091
source .venv/bin/activate             # or: module load ...; or run the container (README)
export WANDB_MODE="${WANDB_MODE:-offline}"   # online needs WANDB_API_KEY; offline: wandb sync later

GPUS_PER_NODE="${SLURM_GPUS_PER_NODE:-${SLURM_NTASKS_PER_NODE:-1}}"
GPUS_PER_NODE="${GPUS_PER_NODE##*:}"   # "a100:4" -> "4"
RUN_NAME="${RUN_NAME:-slurm-${SLURM_JOB_ID:-local}}"  # one name for every task's paths

# shellcheck disable=SC2016  # ${oc.env:...} is for Hydra, not for this shell
srun python train.py trainer=ddp \
    trainer.num_nodes="${SLURM_NNODES:-1}" trainer.devices="${GPUS_PER_NODE}" \
    data.num_workers="${SLURM_CPUS_PER_TASK:-4}" run_name="${RUN_NAME}" ckpt_path=last \
    'hydra.job.name=train_rank${oc.env:SLURM_PROCID}' "$@"   # one log file per task
