#!/usr/bin/env bash
# Entrypoint of the Ollama worker image (Dockerfile.ollama): `ollama serve` on loopback and
# `python -m gpu_worker`, supervised together (supervise.sh: SIGTERM is forwarded to the worker,
# and the script exits 1 if Ollama dies).
#
# The model was pulled at build time, so the worker's start-up (gpu_worker.main: wait for Ollama,
# make MODEL available, warm it with a 1-token request) finds it on disk and nothing is downloaded
# at cold start (runpod.md §2.10, §4.3 item 13). A MODEL that is not in the image is pulled at
# every cold start instead: rebuild with --build-arg OLLAMA_MODEL=... rather than do that.
set -euo pipefail

export ENGINE_KIND=ollama
export OLLAMA_HOST="${OLLAMA_HOST:-127.0.0.1:11434}"
export ENGINE_URL="${ENGINE_URL:-http://${OLLAMA_HOST}}"
export OLLAMA_KEEP_ALIVE="${OLLAMA_KEEP_ALIVE:--1}"
# One Ollama slot per job the worker runs at once; with fewer, Ollama queues the worker's requests
# and MAX_CONCURRENCY only adds waiting. Each slot costs VRAM (its own context window).
export OLLAMA_NUM_PARALLEL="${OLLAMA_NUM_PARALLEL:-${MAX_CONCURRENCY:-8}}"
# The SDK logs whole job inputs (the callers' words) at its DEBUG default (runpod.md §2.11).
export RUNPOD_LOG_LEVEL="${RUNPOD_LOG_LEVEL:-INFO}"

# shellcheck source=deploy/worker/supervise.sh
source "$(dirname "${BASH_SOURCE[0]}")/supervise.sh"
supervise ollama ollama serve
