"""``python -m devstack.engine_sim --host 127.0.0.1 --port 11435 [--ttft-ms 150]
[--tokens-per-s 40] [--model pete-simulator] [--fault none|http500|malformed|cut|stall|slow]``."""

from devstack.engine_sim.app import main

main()
