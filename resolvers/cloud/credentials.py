"""Secrets we must be able to read back: the 1C database credentials an update run signs in with.

They are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the `cryptography` package)
under a key derived from the secret key for this one purpose, so a leaked database dump alone
does not reveal them. They are never returned by the API and never logged.
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken

from resolvers.identity.tokens import derived_key
from foundation.settings import Settings

_PURPOSE = "credentials"


class CredentialsUnreadable(Exception):
    """The stored blob was not made with this secret key (or was altered)."""


def _fernet(settings: Settings) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key(settings, _PURPOSE)))


def encrypt_credentials(settings: Settings, login: str, password: str) -> bytes:
    """The login and password as one encrypted, authenticated blob to store."""
    plain = json.dumps({"login": login, "password": password}, ensure_ascii=False).encode()
    return _fernet(settings).encrypt(plain)


def decrypt_credentials(settings: Settings, blob: bytes) -> tuple[str, str]:
    """(login, password) from a stored blob; CredentialsUnreadable when it is not ours or was altered."""
    try:
        plain = _fernet(settings).decrypt(bytes(blob))
        data = json.loads(plain)
        return str(data["login"]), str(data["password"])
    except (InvalidToken, ValueError, KeyError, TypeError) as error:
        raise CredentialsUnreadable("stored database credentials cannot be decrypted with this secret key") from error
