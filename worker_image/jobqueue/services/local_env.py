"""The connection file of ``jobqueue up``: where your own producers on this machine find its stack.

``jobqueue up`` gives Redis a fresh password at every start and never prints it (docs/record.md: other
local users must not reach the queues). Your own code (a web app, a script, a REPL) needs it to enqueue,
so the URLs go in ``<data-dir>/env``, readable by you alone (0600 in the 0700 data dir) and removed at
stop. It is one ``NAME=value`` per line, which a shell (``set -a; . ./.jobqueue/env; set +a``),
``docker run --env-file`` and dotenv loaders all read. It holds only what every worker's environment
holds already: never the API's admin key, which reaches the API process alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from jobqueue.errors import ConfigurationError

ENV_FILE_NAME = "env"
# Characters a shell, docker's --env-file and dotenv all take unquoted and unchanged. The URLs written here
# are made of them (token_urlsafe passwords, 127.0.0.1, ports, database names).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.:/@%+=,-]*")


def env_file_text(values: Mapping[str, str]) -> str:
    """The file's text; ConfigurationError for a value that would need quoting (then the three readers
    above would disagree on what it means)."""
    lines = ["# jobqueue up: the stack's connection settings for this run (removed when it stops)."]
    for name, value in values.items():
        if not _PLAIN_VALUE.fullmatch(value):
            raise ConfigurationError(f"{name} cannot be written unquoted to the connection file")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def write_env_file(data_dir: Path, values: Mapping[str, str]) -> Path:
    """Write the connection file (0600 from its creation: the password never sits in a readable file)."""
    path = data_dir / ENV_FILE_NAME
    path.unlink(missing_ok=True)  # a file left by a run that was killed: created anew with our mode
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(env_file_text(values))
    return path
