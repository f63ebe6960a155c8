# shellcheck shell=bash
# Sourced by start-ollama.sh and start-vllm.sh: `supervise NAME CMD...` runs the engine (CMD) and
# the worker (`python -m gpu_worker "${worker_args[@]}"`, python being $WORKER_PYTHON if set) side
# by side and ends them together. worker_args holds the script's own arguments (the image's CMD,
# e.g. `--test_input '{...}'` for a one-job local run).
#
# Why not `exec python -m gpu_worker` after starting the engine: once exec'd, nothing would notice
# an engine that dies after start-up (a crash, an OOM kill), and the worker would keep taking jobs
# and fail every one of them. The worker still does its own start-up checks (gpu_worker.main: wait
# for the engine, bounded by ENGINE_START_TIMEOUT_S, then exit 1 or 2 before taking a job).
#
#   engine exits first     -> SIGTERM to the worker, exit 1 (RunPod replaces the worker)
#   worker exits first     -> the engine is stopped, exit with the worker's status
#   SIGTERM/SIGINT to us   -> SIGTERM to the worker (the SDK stops taking jobs, finishes the ones
#                             in flight and exits), then the engine; exit with the worker's status
#
# In the image this script is PID 1, so it is what `docker stop` and RunPod's scale-down signal.
# Needs bash >= 5.1 (`wait -n -p`): Ubuntu 22.04 (vLLM's base) has 5.1, 24.04 (Ollama's) 5.2.

_supervised_name=engine
worker_args=("$@")
_engine_pid=
_worker_pid=

supervise() {
    set +e # from here on every exit status is handled explicitly
    _supervised_name=$1
    shift
    "$@" &
    _engine_pid=$!
    "${WORKER_PYTHON:-python}" -m gpu_worker "${worker_args[@]}" &
    _worker_pid=$!
    trap '_shutdown TERM' TERM
    trap '_shutdown INT' INT

    local ended status
    # A trapped signal interrupts this wait; the trap then runs and exits.
    wait -n -p ended "$_engine_pid" "$_worker_pid"
    status=$?
    trap - TERM INT
    if [[ "$ended" == "$_engine_pid" ]]; then
        _say "$_supervised_name exited with status $status; stopping the worker"
        _stop "$_worker_pid" 30
        exit 1
    fi
    _say "the worker exited with status $status; stopping $_supervised_name"
    _stop "$_engine_pid" 10
    exit "$status"
}

_shutdown() {
    trap - TERM INT
    _say "SIG$1 received: stopping the worker, then $_supervised_name"
    kill -TERM "$_worker_pid" 2>/dev/null
    wait "$_worker_pid"
    local status=$?
    _stop "$_engine_pid" 10
    exit "$status"
}

# _stop PID GRACE_S: SIGTERM, then SIGKILL if PID is still there after GRACE_S seconds.
_stop() {
    local pid=$1 ticks=$(($2 * 10))
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((ticks-- > 0)); do
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

_say() {
    echo "$(basename "$0"): $*" >&2
}
