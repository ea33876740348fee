"""Where the PostgreSQL password comes from (URL, PGPASSWORD, storage.password_file), and that it is never shown."""
from __future__ import annotations

import os

import pytest

from memesh.errors import StorageUnavailable
from memesh.store.storage import open_storage
from tests.pg_server import SUPERUSER

SECRET = "Zq9-s3cret-pw"


@pytest.fixture(scope="module")
def password_role(pg_server):
    role = f"pw{os.getpid()}"
    pg_server.require_password(role, SECRET)
    return role


@pytest.fixture
def role_url(pg_url, password_role, pg_server):
    pg_server.grant_schema(pg_url, password_role)
    return pg_url.replace(f"//{SUPERUSER}@", f"//{password_role}@")


def works(url, tmp_path, **kwargs) -> bool:
    storage = open_storage(url, tmp_path / "x.db", **kwargs)
    try:
        storage.graph.create_entities([{"name": "pw", "entityType": "t", "observations": []}])
        return storage.graph.stats()["entities"] == 1
    finally:
        storage.close()


def test_a_password_file_gives_the_password(role_url, tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    assert works(role_url, tmp_path, password_file=str(secret_file))


def test_the_password_may_be_in_the_url_or_in_pgpassword(role_url, tmp_path, monkeypatch):
    assert works(role_url.replace("@/", f":{SECRET}@/"), tmp_path)
    monkeypatch.setenv("PGPASSWORD", SECRET)
    assert works(role_url, tmp_path)


def test_a_wrong_password_is_a_clear_error_that_does_not_repeat_it(role_url, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    secret_file = tmp_path / "pw"
    secret_file.write_text("Zq9-wrong-guess\n")
    with pytest.raises(StorageUnavailable) as caught:
        works(role_url, tmp_path, password_file=str(secret_file))
    message = str(caught.value)
    assert "password authentication failed" in message and "Zq9-wrong-guess" not in message
    assert "is unavailable" in message and "storage.url" in message
