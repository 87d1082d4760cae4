"""A LangChain model cache in one SQLite file: a greedy strong model answers a prompt once.

Identical drafts of one question make identical strong prompts; with the strong model greedy
(temperature 0), a cached answer is the answer the call would give. `InMemoryCache` shares them
within a process; `SQLiteChatCache` also across processes and runs (a benchmark resumed after a
kill, or two conditions whose drafts coincide), so a strong call is paid once per distinct prompt.
Entries are keyed by LangChain's own key: the serialised prompt and the model's parameters.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads


class SQLiteChatCache(BaseCache):
    """`langchain_core` `BaseCache` on a SQLite file (created with its parents).

    Example:
        >>> import tempfile
        >>> from langchain_core.outputs import ChatGeneration
        >>> from langchain_core.messages import AIMessage
        >>> cache = SQLiteChatCache(Path(tempfile.mkdtemp()) / "strong.db")
        >>> cache.update("prompt", "model", [ChatGeneration(message=AIMessage("Answer: 3"))])
        >>> cache.lookup("prompt", "model")[0].message.content, cache.lookup("other", "model")
        ('Answer: 3', None)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cache (prompt TEXT, llm TEXT, value TEXT, PRIMARY KEY (prompt, llm))"
        )
        self._db.commit()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM cache WHERE prompt = ? AND llm = ?", (prompt, llm_string)
            ).fetchone()
        return None if row is None else list(loads(row[0], allowed_objects="core"))

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        value = dumps(list(return_val))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (prompt, llm_string, value))
            self._db.commit()

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self._db.execute("DELETE FROM cache")
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def cached(model: Any, cache: BaseCache | None = None) -> Any:
    """A copy of chat model `model` that answers from `cache` (None: an `InMemoryCache`).

    Example:
        >>> from cowest_graph.testing import ScriptedChatModel
        >>> strong = cached(ScriptedChatModel(respond=lambda m: "Answer: 3"), None)
        >>> type(strong.cache).__name__
        'InMemoryCache'
    """
    from langchain_core.caches import InMemoryCache

    return model.model_copy(update={"cache": cache if cache is not None else InMemoryCache()})
