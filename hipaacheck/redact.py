"""
Secrets that redact themselves, value masking, and keyed fingerprints.

A `Secret` prints as `Secret('***')` and serialises as `***`; the value leaves it only through
`reveal()`, so an f-string in a log line cannot leak it. A `Fingerprinter` turns values that must
be compared (passwords, matched identifiers) into HMAC-SHA256 digests under a key that is random
per run and never stored, so only equality survives.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

REDACTED = "***"


class Secret:
    """A string that never shows itself: `str`, `repr` and serialisation all redact."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value. Hand it to a client; never to a log, a report or an exception."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})" if self._value else "Secret('')"

    def __str__(self) -> str:
        return REDACTED if self._value else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", hashlib.sha256(self._value.encode()).digest()))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            lambda v: v if isinstance(v, Secret) else Secret(v),
            core_schema.union_schema([core_schema.is_instance_schema(cls),
                                      core_schema.str_schema()]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: REDACTED if v else ""),
        )


class Fingerprinter:
    """
    Keyed fingerprints under a key random per instance (one instance per scan).

    Equal inputs give equal fingerprints within a run; across runs, or without the key, a
    fingerprint says nothing about its input.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def digest(self, value: str | bytes) -> str:
        """A hex HMAC-SHA256 of `value`, shortened to 16 hex digits for evidence."""
        data = value.encode() if isinstance(value, str) else value
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:16]

    def same(self, a: str | bytes | None, b: str | bytes | None) -> bool:
        """Whether two values are equal, compared as keyed digests; None never equals."""
        if a is None or b is None:
            return False
        return hmac.compare_digest(self.digest(a), self.digest(b))


_WORD = re.compile(r"[A-Za-z]+")
_DIGITS = re.compile(r"[0-9]")


def mask(value: str, keep: int = 0) -> str:
    """
    `value` with every letter replaced by `x` and every digit by `9`, keeping the last `keep`
    characters' shape only: `123-45-6789` becomes `999-99-9999`.
    """
    del keep  # the shape is all that is ever kept
    return _DIGITS.sub("9", _WORD.sub(lambda m: "x" * len(m.group()), value))
