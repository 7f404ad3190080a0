"""The peers' own venv (bench/.venv-peers): created on demand, so peer packages never enter the project's
dependency set. Re-installed when bench/requirements-peers.txt changes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PEERS_VENV = BENCH_DIR / ".venv-peers"
REQUIREMENTS = BENCH_DIR / "requirements-peers.txt"


def main_bin_dir() -> Path:
    """bin/ of the venv running the orchestrator (jobqueue is installed there)."""
    return Path(sys.executable).parent


def ensure_peers_venv(log: Path | None = None) -> Path:
    """Create or update the peers' venv; returns its bin/ directory."""
    digest = hashlib.sha1(REQUIREMENTS.read_bytes(), usedforsecurity=False).hexdigest()[:12]
    stamp = PEERS_VENV / f".installed-{digest}"
    bin_dir = PEERS_VENV / "bin"
    if stamp.exists():
        return bin_dir
    print(f"bench: installing peer queues into {PEERS_VENV} ...", flush=True)
    if not (bin_dir / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True
    )
    for old in PEERS_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return bin_dir
