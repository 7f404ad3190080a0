"""Multi-node Redis for the Sentinel and Cluster tests (tests/support/redis_topologies.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_topologies import ClusterTopology, SentinelTopology


@pytest.fixture(scope="session")
def sentinel_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    """One primary, one replica and three sentinels shared by the tests that do not kill a server."""
    topology = SentinelTopology(tmp_path_factory.mktemp("sentinel"))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture
def private_sentinel_topology(tmp_path: Path) -> Iterator[SentinelTopology]:
    """A topology of its own for a test that kills its primary."""
    topology = SentinelTopology(tmp_path / "sentinel")
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def cluster_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    """Three primaries, each with one replica."""
    topology = ClusterTopology(tmp_path_factory.mktemp("cluster"))
    try:
        yield topology.start()
    finally:
        topology.stop()


@pytest.fixture
def private_cluster_topology(tmp_path: Path) -> Iterator[ClusterTopology]:
    """A cluster of its own for a test that kills a primary."""
    topology = ClusterTopology(tmp_path / "cluster")
    try:
        yield topology.start()
    finally:
        topology.stop()
