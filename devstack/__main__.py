"""``python -m devstack`` (what ``make run`` calls): the local stack, see devstack/stack.py."""

import sys

from devstack.stack import main

if __name__ == "__main__":
    sys.exit(main())
