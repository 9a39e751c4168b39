"""``python -m qwen``: command-line chat (see :mod:`qwen.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
