#!/bin/sh
# The image's entry point: `docker run IMAGE flowgen-train [key=value ...]` trains,
# `docker run IMAGE flowgen-sample ckpt=... [key=value ...]` samples; arguments without either
# name go to train.py (as before). Writable paths: FLOWGEN_HOME, FLOWGEN_DATA_DIR (configs/paths).
set -e
app=$(cd "$(dirname "$0")/.." && pwd)
case "$1" in
  flowgen-train) shift; exec python "$app/train.py" "$@" ;;
  flowgen-sample) shift; exec python "$app/sample.py" "$@" ;;
  *) exec python "$app/train.py" "$@" ;;
esac
