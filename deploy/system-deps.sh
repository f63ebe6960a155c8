#!/usr/bin/env bash
# System packages the test suite needs (Debian; CI runs as root). Idempotent and quick when done.
#
# tests/app/test_prometheus.py runs a real Prometheus and promtool (Debian's `prometheus` package
# ships both); tests/deploy/test_worker_deploy.py lints the worker start scripts with shellcheck.
# Already installed: nothing happens. As root: `apt-get update` only when the package
# lists do not know the package yet, then `apt-get install`. Not root: print how to install and
# carry on; those tests then skip and say why.
set -euo pipefail

packages=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)
if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: ${packages[*]} not found and not root; install them with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
    echo "system-deps: the tests that need them will be skipped." >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    # --no-install-recommends: the exporters and the web console are not needed by the tests.
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}
if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    install
elif ! install; then
    apt-get update -qq # stale package lists (a superseded .deb): refresh once and retry
    install
fi
# The package starts a system service on machines with an init system; the tests run their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -n 1
