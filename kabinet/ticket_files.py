"""The download door of tickets' attachments: `GET /ticket-files/<attachment>/<user>/<expires>/<signature>`.

A customer's file is never shown on the cabinet's own origin: it is always a download
(`Content-Disposition: attachment`), its type is never guessed by the browser (`nosniff`), anything
but a PDF or an image is `application/octet-stream`, and `Content-Security-Policy: sandbox` keeps a
file opened anyway from running as the cabinet. The link names its viewer: who may see the ticket
is asked again on every download (resolvers/support/tickets.py `attachment_for_download`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from kabinet.http import DOWNLOAD_HEADERS, attachment_disposition
from resolvers.support.attachments import attachment_for_download

async def download_attachment(request: Request) -> Response:
    """The file for a signed, unexpired link whose viewer may still see the ticket; 403 for anything else
    (nothing tells an expired link from a foreign one)."""
    params = request.path_params
    download = await attachment_for_download(
        request.app.state.settings, params["attachment_id"], params["user_id"], params["expires"], params["signature"],
    )
    if download is None:
        return PlainTextResponse("This download link is invalid or has expired.", status_code=403, headers=DOWNLOAD_HEADERS)
    return Response(
        download.content, media_type=download.content_type,
        headers={"Content-Disposition": attachment_disposition(download.filename), **DOWNLOAD_HEADERS},
    )
