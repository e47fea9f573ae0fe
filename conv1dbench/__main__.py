"""``python -m conv1dbench``: the command line of :mod:`conv1dbench.cli`."""

import sys

from .cli import main

sys.exit(main())
