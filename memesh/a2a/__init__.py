"""The A2A hub: the daemon's HTTP front door, where windows are agents.

Modules, by what they hold:

* :mod:`~memesh.a2a.states`    the task state machine (pure);
* :mod:`~memesh.a2a.names`     agent names from projects, made unique (pure);
* :mod:`~memesh.a2a.tables`    the SQL of the tasks and agents tables (a migration of memesh.db);
* :mod:`~memesh.a2a.taskstore` the a2a-sdk ``TaskStore``, delegating to the storage's A2A
  backend (:class:`memesh.store.base.A2AStore`: :mod:`memesh.store.a2a` for SQLite,
  :mod:`memesh.store.pg.a2a` for PostgreSQL);
* :mod:`~memesh.a2a.hook`      the ``memesh hook prompt`` command;
* :mod:`~memesh.a2a.registry`  which agents exist and which window sessions they are online in;
* :mod:`~memesh.a2a.hub`       the shared ``a2a`` object: send, inbox, reply, … for windows,
  the CLI and Python;
* :mod:`~memesh.a2a.executor`  the a2a-sdk ``AgentExecutor`` that hands each task to its window;
* :mod:`~memesh.a2a.app`       the ASGI app (agent cards, JSON-RPC routes, request handler);
* :mod:`~memesh.a2a.security`  the ASGI middleware (token, Host, Origin, body limit, draining);
* :mod:`~memesh.a2a.frontdoor` uvicorn in its own thread and event loop;
* :mod:`~memesh.a2a.tools`     the MCP tools and the inbox resource;
* :mod:`~memesh.a2a.token`     the bearer token file.

Importing this package is free; the SDK, starlette and uvicorn are imported only by the
modules that need them, after the daemon reported ready.
"""
