"""Plain HTTP endpoints beside GraphQL: health, readiness, metrics, document downloads."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from tortoise import Tortoise

from resolvers.identity.tokens import verify_download
from events.broker import broker_reachable
from models import migrations as migrations_package
from models.billing import DocumentFile

HTTP_REQUESTS = Counter("kabinet_http_requests_total", "HTTP requests served", ["method", "route", "status"])
HTTP_SECONDS = Histogram("kabinet_http_request_seconds", "Time to answer an HTTP request", ["route"])


class BodyTooLarge(Exception):
    """A request's body went past its limit (declared or streamed)."""


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request's body; BodyTooLarge as soon as it exceeds `limit` bytes, declared or streamed, so
    no more than `limit` is ever kept (the HTTP doors' JSON bodies: agent API, provider API)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and holds every migration of this code, and the broker answers:
    a database without the schema (never migrated, or behind) is not ready, whatever `SELECT 1` says."""
    checks = {"database": await _database_ready(request), "broker": await broker_reachable(request.app.state.broadcast)}
    return JSONResponse({"status": "ok" if all(checks.values()) else "unavailable", "checks": checks},
                        status_code=200 if all(checks.values()) else 503)


MIGRATIONS = frozenset(p.stem for p in Path(migrations_package.__file__).parent.glob("[0-9]*.py"))


async def _database_ready(request: Request) -> bool:
    state = request.app.state
    if getattr(state, "schema_ready", False):  # once migrated, it stays so: only reachability is asked again
        return await _database_reachable()
    try:
        _, rows = await Tortoise.get_connection("default").execute_query(
            "SELECT name FROM tortoise_migrations WHERE app = 'models'"
        )
    except Exception:  # noqa: BLE001 — unreachable, or no migrations table: not ready
        return False
    state.schema_ready = MIGRATIONS <= {row["name"] for row in rows}
    return state.schema_ready


async def _database_reachable() -> bool:
    try:
        await Tortoise.get_connection("default").execute_query("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 — any failure means "not ready"
        return False


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def attachment_disposition(filename: str) -> str:
    """An ASCII fallback name and the real (possibly Cyrillic) one, per RFC 6266 / 5987."""
    # no control character reaches the header whatever the name (a CR LF would start another header)
    fallback = "".join(c if " " <= c < "\x7f" else "_" for c in filename.encode("ascii", "replace").decode())
    fallback = fallback.replace("?", "_").replace('"', "").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


async def download_document(request: Request) -> Response:
    """Stream a document's file for a signed, unexpired link; 403 for anything else."""
    params = request.path_params
    document_id = verify_download(request.app.state.settings, params["document_id"], params["expires"], params["signature"])
    if document_id is None:
        return PlainTextResponse("This download link is invalid or has expired.", status_code=403)
    stored = await DocumentFile.get_or_none(document_id=document_id, document__withdrawn_at__isnull=True)
    if stored is None:  # none yet, or the provider withdrew the document (a link given before stops working)
        return PlainTextResponse("The document has no file yet.", status_code=404)
    return Response(
        stored.content,
        media_type=stored.content_type,
        headers={"Content-Disposition": attachment_disposition(stored.filename), **DOWNLOAD_HEADERS},
    )


# Every file served for download (documents, ticket attachments): saved, never shown on the cabinet's
# origin — the type never guessed, no script run even if a browser opened it, no referrer leaked.
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
}

JSON_ERROR_PREFIXES = ("/provider/", "/cluster/")  # the HTTP APIs programs call: every answer is JSON
HTTP_ERROR_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


async def http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take): JSON in the
    `{"error": {code, message}}` shape of the agent and provider APIs there (the agent's with its `field`,
    none), so their clients read one shape of error; plain text elsewhere, as before."""
    headers = getattr(error, "headers", None)
    if request.url.path.startswith(JSON_ERROR_PREFIXES):
        body = {"code": HTTP_ERROR_CODES.get(error.status_code, "HTTP_ERROR"), "message": error.detail}
        if request.url.path.startswith("/cluster/"):
            body["field"] = None
        return JSONResponse({"error": body}, status_code=error.status_code, headers=headers)
    return PlainTextResponse(error.detail, status_code=error.status_code, headers=headers)
