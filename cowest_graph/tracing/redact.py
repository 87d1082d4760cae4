"""Secret scrubbing: nothing that looks like an API key or a credential reaches a trace store."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Redactor = Callable[[dict[str, Any]], dict[str, Any]]
"""A user's own rule: takes a trace record, returns it scrubbed."""

_SECRET_KEY = re.compile(r"(api[_-]?key|authorization|secret|password|passwd|bearer|cookie)", re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{12,}|Bearer\s+[A-Za-z0-9._\-]{12,})")
REDACTED = "[REDACTED]"


def scrub_secrets(value: Any) -> Any:
    """Replace secrets (API keys, authorization headers, passwords) anywhere in a record.

    Keys that name a secret get `[REDACTED]`; strings that look like `sk-...` keys or bearer
    tokens are masked wherever they appear.

    Example:
        >>> scrub_secrets({"api_key": "abc", "note": "key sk-abcdefghijklmnop"})
        {'api_key': '[REDACTED]', 'note': 'key [REDACTED]'}
    """
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SECRET_KEY.search(k) and v is not None
                else scrub_secrets(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_secrets(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(REDACTED, value)
    return value
