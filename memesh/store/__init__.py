"""Storage: SQLite (WAL, FTS5) holding the knowledge graph and the memory store."""
