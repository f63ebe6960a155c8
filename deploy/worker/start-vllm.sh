#!/usr/bin/env bash
# Entrypoint of the vLLM worker image (Dockerfile.vllm): `vllm serve` on loopback and
# `python -m gpu_worker` speaking OpenAI to it, supervised together (supervise.sh: SIGTERM is
# forwarded to the worker, and the script exits 1 if vLLM dies). This is worker-vllm's layout
# (runpod.md §4.1, §2.10) with our worker as the handler.
#
# Environment (docs/deploy-worker.md has the whole table):
#   MODEL                   Hugging Face id or local path vLLM loads (required)
#   SERVED_MODEL_NAME       the name vLLM serves it under and the worker asks for (default: MODEL)
#   ENGINE_PORT             vLLM's loopback port (default 8001). Not VLLM_PORT: vLLM reads that
#                           one itself, as the base of its internal ports, and documents that
#                           passing it to --port does not work.
#   MAX_MODEL_LEN, GPU_MEMORY_UTILIZATION, DTYPE   -> --max-model-len, --gpu-memory-utilization,
#                           --dtype when set
#   VLLM_ARGS               further `vllm serve` flags, split on whitespace (no quoting)
#   ENGINE_START_TIMEOUT_S  how long the worker waits for vLLM to load and warm (default 1200 s);
#                           RunPod's own limit is RUNPOD_INIT_TIMEOUT (7 min unless set on the
#                           endpoint), which must be at least as long (runpod.md §1.9)
#
# Weights, first match wins: HF_HUB_CACHE if set; the copy baked into the image when MODEL is the
# model it was built with (then offline: no request to Hugging Face at all); RunPod's cached
# models under /runpod-volume/huggingface-cache/hub; otherwise vLLM downloads them now, at every
# cold start. RUNPOD_VOLUME and BAKED_MODELS_DIR move the two roots (tests; other mounts).
set -euo pipefail

: "${MODEL:?set MODEL to the Hugging Face model id (or local path) for vLLM to serve}"
port="${ENGINE_PORT:-8001}"
served="${SERVED_MODEL_NAME:-$MODEL}"

args=(serve "$MODEL" --host 127.0.0.1 --port "$port" --served-model-name "$served")
if [[ -n "${MAX_MODEL_LEN:-}" ]]; then args+=(--max-model-len "$MAX_MODEL_LEN"); fi
if [[ -n "${GPU_MEMORY_UTILIZATION:-}" ]]; then
    args+=(--gpu-memory-utilization "$GPU_MEMORY_UTILIZATION")
fi
if [[ -n "${DTYPE:-}" ]]; then args+=(--dtype "$DTYPE"); fi
read -r -a extra <<<"${VLLM_ARGS:-}"
args+=("${extra[@]}")
unset VLLM_ARGS # vLLM warns about VLLM_* variables it does not know

baked="${BAKED_MODELS_DIR:-/opt/models}"
runpod_cache="${RUNPOD_VOLUME:-/runpod-volume}/huggingface-cache/hub"
if [[ -z "${HF_HUB_CACHE:-}" ]]; then
    if [[ -f "$baked/BAKED_MODEL" && "$(<"$baked/BAKED_MODEL")" == "$MODEL" ]]; then
        export HF_HUB_CACHE="$baked/hub" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
    elif [[ -d "$runpod_cache" ]]; then
        export HF_HUB_CACHE="$runpod_cache"
    fi
fi

export ENGINE_KIND=openai
export ENGINE_URL="http://127.0.0.1:${port}/v1"
export MODEL="$served"
export ENGINE_START_TIMEOUT_S="${ENGINE_START_TIMEOUT_S:-1200}"
export RUNPOD_LOG_LEVEL="${RUNPOD_LOG_LEVEL:-INFO}"

start_s="${ENGINE_START_TIMEOUT_S%.*}"
init_s="${RUNPOD_INIT_TIMEOUT:-420}"
if [[ "$start_s" =~ ^[0-9]+$ && "$init_s" =~ ^[0-9]+$ ]] && ((start_s > init_s)); then
    echo "$(basename "$0"): ENGINE_START_TIMEOUT_S=${ENGINE_START_TIMEOUT_S} is longer than" \
        "RunPod's start limit (RUNPOD_INIT_TIMEOUT=${RUNPOD_INIT_TIMEOUT:-unset, i.e. 420}):" \
        "set RUNPOD_INIT_TIMEOUT on the endpoint or a slow load is cut short" >&2
fi

# shellcheck source=deploy/worker/supervise.sh
source "$(dirname "${BASH_SOURCE[0]}")/supervise.sh"
supervise vllm vllm "${args[@]}"
