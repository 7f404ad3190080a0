"""``python -m jobqueue`` is the ``jobqueue`` command."""

import sys

from jobqueue.cli import main

sys.exit(main())
