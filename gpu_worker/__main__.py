"""``python -m gpu_worker``: see :mod:`gpu_worker.main`."""

from gpu_worker.main import main

raise SystemExit(main())
