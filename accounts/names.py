"""What a call name (nickname) may contain: one rule for the server check and the OpenAPI pattern.

Refused: control characters (Cc), format characters (Cf: zero-width spaces, bidi overrides, soft
hyphens) and lone surrogates (Cs). Everything else of Unicode is allowed (letters of any script,
emoji, and code points a newer Unicode may assign).
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# Lone surrogates (Cs) cannot be named in the pattern (Rust's regex, used by pydantic, has no
# surrogate code points); the JSON guard (halobestie.bodylimit) refuses them before parsing.
_PATTERN_CATEGORIES = frozenset({"Cc", "Cf"})


def call_name_char_ok(ch: str) -> bool:
    return unicodedata.category(ch) not in REFUSED_CATEGORIES


def _ranges() -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp)) in _PATTERN_CATEGORIES:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return ranges


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


@cache
def call_name_pattern() -> str:
    """A regex (Python syntax) of an allowed call name: allowed characters, at least one of them
    not whitespace."""
    refused = "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in _ranges())
    allowed = f"[^{refused}]"
    visible = f"[^\\s{refused}]"
    return f"^{allowed}*{visible}{allowed}*$"
