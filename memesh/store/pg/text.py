"""How text becomes searchable in PostgreSQL: pure functions shared by the graph and memories.

PostgreSQL's own parser and case folding depend on the database's locale, and it keeps
diacritics. So that both backends find the same things for the same words, memesh hands
PostgreSQL words it has already made: case-folded, diacritics removed (as SQLite's
``remove_diacritics``), split into runs of letters and digits (as the graph's query
words are). PostgreSQL then only stems them (the ``memesh`` configuration).
"""
from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"[^\W_]+")


def plain(text: str) -> str:
    """``text`` case-folded and without diacritics."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    if decomposed.isascii():  # most text: no combining marks to drop (and a bulk copy makes 100,000s)
        return decomposed
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str | None) -> list[str]:
    """The search words of ``text``, in order (repeats kept: they weigh in the ranking)."""
    return WORD.findall(plain(text or ""))


def document(text: str | None) -> str:
    """``text`` as the space-separated words PostgreSQL indexes."""
    return " ".join(words(text))


def query_words(query: str) -> list[str]:
    """The distinct words of a query, in order; each is searched on its own (none is syntax)."""
    return list(dict.fromkeys(words(query)))


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own %, _ and backslash taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
