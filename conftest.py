"""Fixtures shared by ``tests`` and ``tests_property``: the PostgreSQL server and the storage backends.

``pg_server`` starts one real PostgreSQL for the whole run (see ``tests/pg_server.py``)
and stops it at the end. Where the server binaries are missing the PostgreSQL half of
the suite is skipped, except under CI (``CI`` set), where that is a failure: CI must
test both backends.

``pg_url`` is a fresh, empty database on that server for one test.
``own_server`` is a PostgreSQL server of one test's own (not started), for tests that
stop and start it.
``backend`` is parametrised over ``sqlite`` and ``postgresql``: the storage URL of fresh
storage of each (``tests.store.backends.open_backend`` opens it).
"""
from __future__ import annotations

import os

import pytest

from tests.pg_server import PgServer, find_bin_dir

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_server():
    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = ("PostgreSQL server binaries (initdb, pg_ctl) not found; install the 'postgresql' "
                   "package (.ci/run does) to test the PostgreSQL backend")
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    server = PgServer(bin_dir)
    try:
        server.start()
        server.has_trigram = server.make_template()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_url(pg_server):
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


@pytest.fixture
def own_server(pg_server):  # pg_server: skip/fail exactly when the shared server would
    server = PgServer(find_bin_dir())
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The storage URL of fresh storage of each backend: ``sqlite:<file>`` or a PostgreSQL database."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_url")
    else:
        yield "sqlite:" + str(request.getfixturevalue("tmp_path") / "memesh.db")
