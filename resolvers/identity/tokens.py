"""Tokens a person proves themselves with: access tokens (JWT), opaque refresh/invite tokens, signed
download URLs, and the per-purpose keys they are signed with. `kabinet/auth.py` reads them off requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt

from foundation.clock import timestamp, utcnow
from foundation.settings import Settings
from foundation.bounded_cache import BoundedCache

# Ended sign-ins (resolvers/identity/sign_ins.py EndedLogins) and the retention of revoked refresh tokens
# (resolvers/common/housekeeping.py) read these two figures from here, their one place:
ENDED_LOGIN_MARGIN_SECONDS = 60.0  # an ended sign-in is remembered its access tokens' lifetime and this much more
# How late a revocation may become visible after its revoked_at: the writer reads its clock before
# the UPDATE and commits after the rest of its transaction (lock waits, a stalled event loop), on a
# host whose clock may differ a little; the ended sign-ins' poll reads that far back.
REVOCATION_LATE_SECONDS = 300.0


def ended_login_memory_seconds(settings: Settings) -> float:
    """How long a process remembers an ended sign-in: its last access token has surely expired by then."""
    return settings.access_token_minutes * 60 + ENDED_LOGIN_MARGIN_SECONDS


JWT_ALGORITHM = "HS256"  # pinned: a token naming any other algorithm, `none` included, is refused

def derived_key(settings: Settings, purpose: str) -> bytes:
    """A separate key per purpose, so a token of one kind can never pass as another."""
    return hmac.new(settings.resolved_secret_key.encode(), purpose.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: datetime


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, login_id: uuid.UUID, *, must_change_password: bool = False
) -> AccessToken:
    now = utcnow().replace(microsecond=0)
    expires_at = now + timedelta(minutes=settings.access_token_minutes)
    claims = {
        "sub": str(user_id),
        "sid": str(login_id),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": expires_at,
    }
    if must_change_password:  # a password someone else chose (resolvers/organizations/people.py): the token opens nothing else
        claims["pwc"] = True
    token = jwt.encode(claims, derived_key(settings, "jwt"), algorithm=JWT_ALGORITHM)
    return AccessToken(token, expires_at)


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    login_id: uuid.UUID
    expires_at: datetime
    must_change_password: bool = False  # the `pwc` claim: only changing the password is allowed


# An access token we issue is ~300 bytes; anything much longer is not one of ours, checked or not.
MAX_ACCESS_TOKEN_CHARS = 2_000
# Tokens verified once (a client sends the same token with every request for 15 minutes): only
# tokens that passed, by their text, within this budget; a failed one is never kept.
VERIFIED_TOKENS: BoundedCache[TokenClaims] = BoundedCache("verified tokens", 4 * 1024 * 1024)
VERIFIED_TOKEN_OVERHEAD = 400  # the claims object, its key tuple and the cache's own entry


def decode_access_token(settings: Settings, token: str) -> TokenClaims | None:
    """The token's claims, or None when it is malformed, tampered, expired or not ours."""
    if len(token) > MAX_ACCESS_TOKEN_CHARS:
        return None
    key = derived_key(settings, "jwt")
    cache_key = (token, key, settings.jwt_issuer, settings.jwt_audience)
    claims = VERIFIED_TOKENS.get(cache_key)
    if claims is None:
        claims = _verified_claims(token, key, settings.jwt_issuer, settings.jwt_audience)
        if claims is not None:
            size = len(token) + len(key) + len(settings.jwt_issuer) + len(settings.jwt_audience) + VERIFIED_TOKEN_OVERHEAD
            VERIFIED_TOKENS.put(cache_key, claims, size)
    if claims is None or claims.expires_at <= utcnow():
        return None
    return claims


def _verified_claims(token: str, key: bytes, issuer: str, audience: str) -> TokenClaims | None:
    """Signature, issuer, audience and claims checked; its expiry is checked by the caller every time."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "sid"], "verify_exp": False},
        )
        return TokenClaims(
            uuid.UUID(claims["sub"]),
            uuid.UUID(claims["sid"]),
            datetime.fromtimestamp(claims["exp"], timezone.utc),
            claims.get("pwc") is True,
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError, OSError):
        return None


def new_opaque_token() -> tuple[str, str]:
    """A random token for the client and the hash we store instead of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_opaque_token(token)


def hash_opaque_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_download(settings: Settings, document_id: uuid.UUID, now: float | None = None) -> str:
    """`/files/<id>/<expires>/<signature>`: valid for this one document until it expires."""
    expires = int((now or timestamp()) + settings.download_url_seconds)
    signature = _download_signature(settings, document_id, expires)
    return f"{settings.public_url}/files/{document_id}/{expires}/{signature}"


def verify_download(settings: Settings, document_id: str, expires: str, signature: str) -> uuid.UUID | None:
    """The document id when the signature is ours and the link has not expired, else None."""
    try:
        doc_id = uuid.UUID(document_id)
        expires_at = int(expires)
    except ValueError:
        return None
    expected = _download_signature(settings, doc_id, expires_at)
    if not hmac.compare_digest(expected, signature) or expires_at < timestamp():
        return None
    return doc_id


def _download_signature(settings: Settings, document_id: uuid.UUID, expires: int) -> str:
    digest = hmac.new(derived_key(settings, "download"), f"{document_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
