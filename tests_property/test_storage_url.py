"""Properties of the storage URL (memesh.store.url): parsing, and that a password is never shown."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memesh.store.url import POSTGRESQL, SQLITE, describe, parse_storage_url, redact, server_name

# A marker prefix, so the secret cannot happen to be a piece of the rest of the URL.
SECRET = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20).map(lambda s: "Zq9#" + s)


@given(SECRET, st.sampled_from(["db.example.com", "10.0.0.5", "[::1]"]), st.integers(1, 65535))
def test_a_password_in_the_user_part_of_a_url_is_never_shown(secret, host, port):
    url = f"postgresql://alice:{quote(secret, safe='')}@{host}:{port}/team"
    assert parse_storage_url(url).kind == POSTGRESQL
    for shown in (redact(url), describe(parse_storage_url(url), "/x"), server_name(url)):
        assert quote(secret, safe="") not in shown
    assert redact(url) == f"postgresql://alice:***@{host}:{port}/team"


@given(SECRET)
def test_a_password_parameter_is_never_shown(secret):
    url = f"postgresql://alice@db/team?sslmode=require&password={quote(secret, safe='')}"
    shown = redact(url)
    assert quote(secret, safe="") not in shown and "password=***" in shown and "sslmode=require" in shown


def test_sqlite_urls_name_the_home_database_or_an_absolute_file():
    assert parse_storage_url("sqlite:").kind == SQLITE and parse_storage_url("sqlite:").path is None
    assert parse_storage_url("sqlite:/var/m.db").path == "/var/m.db"
    assert describe(parse_storage_url("sqlite:"), "/h/memesh.db") == "sqlite /h/memesh.db"


@pytest.mark.parametrize("bad", ["", "mysql://h/d", "sqlite:relative.db", "postgresql://h:port/d", "postgresql:/d"])
def test_an_unknown_or_malformed_url_is_refused(bad):
    with pytest.raises(ValueError):
        parse_storage_url(bad)


def test_the_server_name_says_host_port_and_database():
    assert server_name("postgresql://u:pw@db.example.com:6432/team") == "db.example.com:6432/team"
    assert server_name("postgresql://u@/team?host=/run/postgresql") == "/run/postgresql:5432/team"
