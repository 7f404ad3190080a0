"""The peers' own venvs, created on demand, so peer packages never enter the project's dependency set.
Each is re-installed when its requirements file changes.

- ``peers`` (bench/.venv-peers): RQ, Dramatiq, Huey, arq, Celery.
- ``taskiq`` (bench/.venv-taskiq): Taskiq and taskiq-redis, which needs redis-py >= 8 while Dramatiq and
  Celery cap it below 6, so they cannot share one venv.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENVS: dict[str, tuple[Path, Path]] = {
    "peers": (BENCH_DIR / ".venv-peers", BENCH_DIR / "requirements-peers.txt"),
    "taskiq": (BENCH_DIR / ".venv-taskiq", BENCH_DIR / "requirements-taskiq.txt"),
}


def main_bin_dir() -> Path:
    """bin/ of the venv running the orchestrator (jobqueue is installed there)."""
    return Path(sys.executable).parent


def is_installed(name: str) -> bool:
    """Whether venv ``name`` exists and matches its requirements file."""
    venv, requirements = VENVS[name]
    return (venv / f".installed-{_digest(requirements)}").exists()


def _digest(requirements: Path) -> str:
    return hashlib.sha1(requirements.read_bytes(), usedforsecurity=False).hexdigest()[:12]


def ensure_venv(name: str) -> Path:
    """Create or update venv ``name`` (a key of VENVS); returns its bin/ directory."""
    venv, requirements = VENVS[name]
    stamp = venv / f".installed-{_digest(requirements)}"
    bin_dir = venv / "bin"
    if stamp.exists():
        return bin_dir
    print(f"bench: installing {requirements.name} into {venv} ...", flush=True)
    if not (bin_dir / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True
    )
    for old in venv.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return bin_dir


def bin_dirs(venvs: Iterable[str]) -> dict[str, Path]:
    """bin/ of each venv a run needs, by name: ``main`` (this one) and each peer venv, created on demand."""
    bins = {"main": main_bin_dir()}
    for venv in sorted(set(venvs) - {"main"}):
        bins[venv] = ensure_venv(venv)
    return bins
