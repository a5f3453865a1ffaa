"""Fixtures for the archive database tests: virtual boards' logs and a real PostgreSQL."""

import itertools

import pytest

from host_tools.archive_db.pgcluster import PgCluster


@pytest.fixture(scope="session")
def pg_cluster():
    with PgCluster() as cluster:
        yield cluster


_names = itertools.count()


@pytest.fixture
def pg_url(pg_cluster):
    """A fresh, empty database on the test cluster (the URL a user would give)."""
    return pg_cluster.create_database(f"archive{next(_names)}")
