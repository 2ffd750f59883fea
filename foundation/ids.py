"""Opaque global ids: `base64("TypeName:uuid")`, decoded wherever an argument carries one."""

from __future__ import annotations

import base64
import binascii
import uuid
from functools import lru_cache


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


@lru_cache(maxsize=32_768)  # ~8 MB at most; a dashboard writes hundreds of ids, the same ones each refresh
def to_global_id(type_name: str, pk: uuid.UUID) -> str:
    # base64.urlsafe_b64encode without its layers of calls
    return binascii.b2a_base64(f"{type_name}:{pk}".encode(), newline=False).translate(_URL_SAFE).rstrip(b"=").decode()


def from_global_id(global_id: str) -> tuple[str, uuid.UUID] | None:
    """(type name, primary key), or None when the id is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
        type_name, _, pk = raw.partition(":")
        return type_name, uuid.UUID(pk)
    except (ValueError, UnicodeDecodeError):
        return None


def pk_of(global_id: str | None, type_name: str) -> uuid.UUID | None:
    """The primary key of a global id of `type_name`; None for any other or malformed id."""
    decoded = from_global_id(global_id) if global_id else None
    return decoded[1] if decoded and decoded[0] == type_name else None


NO_SUCH_ID = uuid.UUID(int=0)  # filters on an id that cannot match, for ids that do not decode
