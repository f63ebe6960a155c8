"""``python -m devstack.emulator``: serve the RunPod emulator on loopback until SIGINT/SIGTERM.

    python -m devstack.emulator --host 127.0.0.1 --port 8101 --endpoint-id local --api-key KEY \\
        [--endpoint-id other] [--worker-api-key WKEY] [--virtual] [--config faults.json]

``--api-key`` defaults to ``$EMULATOR_API_KEY`` (the launcher passes it so, keeping it out of
``ps``), then to the config file's, then to ``emulator-key``.

``--config`` is the JSON form of :class:`~devstack.emulator.config.EmulatorConfig`; flags win over
it. One line is logged once the socket accepts connections; exit status 0 after a signal, 2 for a
bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from devstack.emulator.app import create_emulator
from devstack.emulator.behavior import default_behavior
from devstack.emulator.config import EmulatorConfig, config_changes
from devstack.serve import serve

log = structlog.get_logger("devstack.emulator")


def parse_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> argparse.Namespace:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m devstack.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument(
        "--endpoint-id", action="append", dest="endpoint_ids", help="repeatable; default local"
    )
    parser.add_argument(
        "--api-key",
        default=env.get("EMULATOR_API_KEY"),
        help="client API key (Authorization: Bearer KEY); default $EMULATOR_API_KEY",
    )
    parser.add_argument("--worker-api-key", help="only accept workers sending this key")
    parser.add_argument("--virtual", action="store_true", help="run jobs in-process")
    parser.add_argument("--config", help="JSON settings file (EmulatorConfig fields)")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    changes: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            changes = config_changes(json.load(handle))
    if args.endpoint_ids:
        changes["endpoint_ids"] = tuple(args.endpoint_ids)
    if args.api_key:
        changes["api_key"] = args.api_key
    if args.worker_api_key:
        changes["worker_api_key"] = args.worker_api_key
    if args.virtual:
        changes["virtual_worker"] = default_behavior
    return EmulatorConfig(**changes)


async def run(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_emulator(config)
    async with serve(app, host=host, port=port) as base_url:
        log.info(
            "emulator_listening",
            url=base_url,
            endpoints=",".join(config.endpoint_ids),
            virtual=config.virtual_worker is not None,
        )
        await stop.wait()
        # release the workers' long-polls first, or the server's graceful shutdown waits them out
        app.state.emulator.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = build_config(args)
    except (OSError, ValueError, TypeError) as exc:
        print(f"devstack.emulator: bad configuration: {exc}", file=sys.stderr)
        return 2
    runner_kwargs: dict[str, Any] = {}
    with contextlib.suppress(ImportError):
        import uvloop

        runner_kwargs["loop_factory"] = uvloop.new_event_loop
    with asyncio.Runner(**runner_kwargs) as runner:
        runner.run(run(config, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
