"""The PostgreSQL schema of memesh, as an ordered registry of migrations.

The tables mirror the SQLite ones (:mod:`memesh.store.db`) so that both backends hold the
same data and answer with the same shapes; differences, and why:

* Names, types, tags and projects use the "C" collation: byte order, as SQLite's BINARY,
  so pages come in the same order from both backends.
* Search lives in columns of ``entities`` / ``memories`` rather than in separate tables:
  ``search`` (a weighted tsvector: name A, entity type B, observations C; for memories
  tags A, content D), ``name_search`` (the name alone, for the name-first part of large
  search passes) and ``folded`` (case-folded text for substring search, indexed with
  pg_trgm where that extension can be installed; else substring search scans).
  memesh fills them in the same transaction as the change (:mod:`memesh.store.pg.graph`).
  Their GIN indexes keep a short pending list (1 MB; entities version 4, memories 5):
  searches read it whole.
* The ``memesh`` text search configuration stems English words (Snowball) but keeps
  every word (no stop words), like SQLite's porter tokenizer.
* Observations are unique per entity by the hash of their text, since a B-tree entry
  cannot hold an arbitrarily long text.
* Every entity, observation and memory records who wrote it (``origin_user``,
  ``origin_host``) and when.
* The A2A tables (version 3, :mod:`memesh.store.pg.a2a`) carry a ``hub`` column, the
  identity of the home whose daemon owns the row, because one database serves many
  daemons and each hub routes only to its own windows; the task is ``bytea``.

To extend the schema append ``(next_version, step)``; a step is SQL text or a function
of a cursor, run in one transaction under the migration lock (:mod:`memesh.store.pg.db`).
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

_SCHEMA_V1 = """
CREATE TEXT SEARCH DICTIONARY memesh_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION memesh (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION memesh ALTER MAPPING FOR asciiword, word, numword, asciihword, hword,
    hword_part, hword_asciipart, hword_numpart WITH memesh_stem;

-- entity_type IS NULL marks a stub: a name only used as a relation endpoint so far.
CREATE TABLE entities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE,
    entity_type text COLLATE "C",
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    origin_user text,
    origin_host text,
    search      tsvector,
    name_search tsvector,
    folded      text
);
CREATE INDEX entities_search ON entities USING gin (search);
CREATE INDEX entities_name_search ON entities USING gin (name_search);
CREATE INDEX entities_stubs ON entities (id) WHERE entity_type IS NULL;

CREATE TABLE observations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_id   bigint NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    content     text NOT NULL,
    created_at  double precision NOT NULL,
    origin_user text,
    origin_host text
);
CREATE UNIQUE INDEX observations_unique ON observations (entity_id, md5(content));

CREATE TABLE relations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_id       bigint NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    to_id         bigint NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    relation_type text COLLATE "C" NOT NULL,
    UNIQUE (from_id, to_id, relation_type)
);
CREATE INDEX relations_to ON relations (to_id);

CREATE TABLE memories (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project      text COLLATE "C" NOT NULL,
    content      text NOT NULL,
    content_hash text NOT NULL,
    kind         text COLLATE "C" NOT NULL,
    importance   double precision,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    origin_user  text,
    origin_host  text,
    search       tsvector,
    UNIQUE (project, content_hash)
);
CREATE INDEX memories_project_recent ON memories (project, updated_at, id);
CREATE INDEX memories_recent ON memories (updated_at, id);
CREATE INDEX memories_search ON memories USING gin (search);

CREATE TABLE memory_tags (
    memory_id bigint NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    tag       text COLLATE "C" NOT NULL,
    PRIMARY KEY (memory_id, tag)
);
CREATE INDEX memory_tags_tag ON memory_tags (tag);
"""


def _add_trigram_index(cur: Any) -> None:
    """Index substring search with pg_trgm when the extension is (or can be) installed."""
    available = cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone()
    installed = cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
    if available and not installed:
        cur.execute("SAVEPOINT trgm")
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cur.execute("RELEASE SAVEPOINT trgm")
            installed = True
        except Exception as exc:  # not allowed to (no CREATE privilege): substring search scans
            cur.execute("ROLLBACK TO SAVEPOINT trgm")
            logger.warning("could not install pg_trgm (%s); substring search will scan", exc)
    if installed:
        cur.execute("CREATE INDEX entities_folded_trgm ON entities USING gin (folded gin_trgm_ops)")
    else:
        logger.warning("pg_trgm is not available on this server; substring search will scan")


_SCHEMA_V3_A2A = """
CREATE TABLE a2a_tasks (
    hub         text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    context_id  text COLLATE "C" NOT NULL,
    agent       text COLLATE "C" NOT NULL,
    sender      text NOT NULL,
    state       text COLLATE "C" NOT NULL,
    summary     text NOT NULL,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    task        bytea NOT NULL,
    PRIMARY KEY (hub, id)
);
CREATE INDEX a2a_tasks_inbox ON a2a_tasks (hub, agent, state, created_at);
CREATE INDEX a2a_tasks_newest ON a2a_tasks (hub, created_at, id);
CREATE INDEX a2a_tasks_context ON a2a_tasks (hub, context_id, created_at);
CREATE INDEX a2a_tasks_state ON a2a_tasks (hub, state, updated_at);

CREATE TABLE a2a_agents (
    hub         text COLLATE "C" NOT NULL,
    name        text COLLATE "C" NOT NULL,
    project     text COLLATE "C" NOT NULL,
    description text NOT NULL,
    created_at  double precision NOT NULL,
    last_seen   double precision NOT NULL,
    PRIMARY KEY (hub, name)
);
CREATE INDEX a2a_agents_project ON a2a_agents (hub, project, last_seen);
"""


# A GIN index gathers new entries in a pending list that every search reads whole and the
# planner prices the index by; the write that outgrows the list's limit merges it into
# the index. At PostgreSQL's default limit, 4 MB, the searches of a graph being written
# to cost up to twice their usual server time (10k entities, 1,500 add_observations
# later); at 1 MB they cost what they do with nothing pending, and writes a little more.
_SHORT_PENDING_LISTS = """
ALTER INDEX entities_search SET (gin_pending_list_limit = 1024);
ALTER INDEX entities_name_search SET (gin_pending_list_limit = 1024);
"""


def _shorten_pending_lists(cur: Any) -> None:
    cur.execute(_SHORT_PENDING_LISTS)
    if cur.execute("SELECT to_regclass(quote_ident(current_schema()) || '.entities_folded_trgm')").fetchone()[0]:
        cur.execute("ALTER INDEX entities_folded_trgm SET (gin_pending_list_limit = 1024)")


MIGRATIONS: list[tuple[int, Any]] = [
    (1, _SCHEMA_V1),
    (2, _add_trigram_index),
    (3, _SCHEMA_V3_A2A),
    (4, _shorten_pending_lists),
    (5, "ALTER INDEX memories_search SET (gin_pending_list_limit = 1024)"),
]
