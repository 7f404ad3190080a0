"""``python -m jobqueue`` is the ``jobqueue`` command."""

import sys

from jobqueue.cli.main import main

sys.exit(main())
