"""The SQL of the A2A tables in memesh.db (a migration of :mod:`memesh.store.db`).

``a2a_tasks`` holds every task as the serialized a2a-sdk ``Task`` (protobuf bytes in
``task``) beside the columns that queries need: the agent it was sent to, who sent it,
its state, the first text of its request (``summary``, for the inbox and the prompt hook,
which must not decode protobuf), and its times. ``a2a_agents`` remembers every agent
that ever registered, so a task for an offline agent can wait for it and its card can
still be served. Plain text only: no import of the SDK here (db.py imports this module).
"""

SCHEMA = """
CREATE TABLE a2a_tasks (
    id          TEXT PRIMARY KEY,
    context_id  TEXT NOT NULL,
    agent       TEXT NOT NULL,
    sender      TEXT NOT NULL,
    state       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    task        BLOB NOT NULL
);
CREATE INDEX a2a_tasks_inbox ON a2a_tasks(agent, state, created_at);
CREATE INDEX a2a_tasks_newest ON a2a_tasks(created_at, id);
CREATE INDEX a2a_tasks_context ON a2a_tasks(context_id, created_at);
CREATE INDEX a2a_tasks_state ON a2a_tasks(state, updated_at);

CREATE TABLE a2a_agents (
    name        TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  REAL NOT NULL,
    last_seen   REAL NOT NULL
);
CREATE INDEX a2a_agents_project ON a2a_agents(project, last_seen);
"""
