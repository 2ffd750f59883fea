"""A ticket's files: what may be attached (an allow-list of types, checked by content as well as by name,
bounded in size per file, per ticket and per organization and day) and the download door's side of it
(links signed for one file and one viewer, re-checked on every download). Served only as downloads:
kabinet/ticket_files.py with kabinet/http.py's DOWNLOAD_HEADERS."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
import uuid
from dataclasses import dataclass

from tortoise.functions import Sum

from foundation.clock import timestamp, utcnow
from foundation.settings import Settings
from models.identity import User
from models.tickets import SupportTicket, TicketAttachment, TicketAttachmentFile
from resolvers.common.context import RequestContext, Viewer
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.common.permissions import TYPE_RULES, Sight
from resolvers.identity.tokens import derived_key
from resolvers.support import tickets
from resolvers.support.tickets import DAY, one_writer, ticket_to_write

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENT_BYTES_PER_DAY = 50 * 1024 * 1024  # per organization, in the last 24 hours
ATTACHMENTS_PER_TICKET = 20


# ---------------------------------------------------------------------------------------- attachments


@dataclass(frozen=True)
class FileType:
    content_type: str  # as stored and, for PDF and images, as served
    family: str  # what the content must look like
    inline_safe: bool = False  # PDF and images keep their type; anything else is served as octet-stream


FILE_TYPES: dict[str, FileType] = {
    "pdf": FileType("application/pdf", "pdf", True),
    "png": FileType("image/png", "png", True),
    "jpg": FileType("image/jpeg", "jpeg", True),
    "jpeg": FileType("image/jpeg", "jpeg", True),
    "gif": FileType("image/gif", "gif", True),
    "webp": FileType("image/webp", "webp", True),
    "txt": FileType("text/plain", "text"),
    "log": FileType("text/plain", "text"),
    "csv": FileType("text/csv", "text"),
    "doc": FileType("application/msword", "ole"),
    "xls": FileType("application/vnd.ms-excel", "ole"),
    "docx": FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "zip"),
    "xlsx": FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "zip"),
    "odt": FileType("application/vnd.oasis.opendocument.text", "zip"),
    "ods": FileType("application/vnd.oasis.opendocument.spreadsheet", "zip"),
    "zip": FileType("application/zip", "zip"),
    "7z": FileType("application/x-7z-compressed", "7z"),
    "rar": FileType("application/vnd.rar", "rar"),
}
_MAGIC = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "ole": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
    "7z": (b"7z\xbc\xaf\x27\x1c",),
    "rar": (b"Rar!\x1a\x07",),
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
ALLOWED_EXTENSIONS = ", ".join(sorted(FILE_TYPES))


def sniff(content: bytes, family: str) -> bool:
    """Whether the bytes are what `family` says, by their content (never by their name alone)."""
    if family == "webp":
        return content[:4] == b"RIFF" and content[8:12] == b"WEBP"
    if family == "text":
        try:
            decoded = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                decoded = content.decode("cp1251")  # 1C's own logs and exports
            except UnicodeDecodeError:
                return False
        return not _CONTROL.search(decoded)
    return content.startswith(_MAGIC[family])


_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Zl", "Zp"})  # controls (CR, LF, tab…), format (bidi overrides), line separators


def clean_filename(filename: str) -> str:
    """The name as it is kept: its last path part, no control, format or line-separator characters,
    at most 200 characters (the extension kept)."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    # Every control and format character goes, line breaks and bidi overrides too: the name is
    # written into the download's Content-Disposition header and shown to staff and colleagues.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _NOT_IN_NAMES)
    name = name.replace('"', "").strip().strip(".")
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = stem[: 200 - len(extension) - 1] + dot + extension if dot and len(extension) < 10 else name[:200]
    return name


def file_type_of(filename: str, content: bytes) -> FileType:
    """The allowed type a file is, by its extension and its content alike; INVALID otherwise."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    file_type = FILE_TYPES.get(extension)
    if file_type is None:
        raise UserFacingError(
            ErrorCode.INVALID, f"This type of file is not accepted. Allowed: {ALLOWED_EXTENSIONS}.", "filename",
        )
    if not sniff(content, file_type.family):
        raise UserFacingError(
            ErrorCode.INVALID, f"The file's content is not a .{extension} file: attach the file itself.", "content_base64",
        )
    return file_type


def decode_content(content_base64: str) -> bytes:
    """The file's bytes from base64; INVALID when it is not base64, empty, or over ATTACHMENT_MAX_BYTES
    (checked on the text's length before decoding)."""
    if len(content_base64) > (ATTACHMENT_MAX_BYTES + 2) // 3 * 4 + 4:
        raise _too_big()
    try:
        content = base64.b64decode("".join(content_base64.split()), validate=True)  # line breaks of MIME-style base64
    except (binascii.Error, ValueError):
        raise UserFacingError(ErrorCode.INVALID, "The content is not base64.", "content_base64") from None
    if not content:
        raise UserFacingError(ErrorCode.INVALID, "The file is empty.", "content_base64")
    if len(content) > ATTACHMENT_MAX_BYTES:
        raise _too_big()
    return content


def _too_big() -> UserFacingError:
    return UserFacingError(
        ErrorCode.INVALID, f"A file is at most {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB.", "content_base64",
    )


async def attach(ctx: RequestContext, ticket_id: uuid.UUID, filename: str, content_base64: str) -> TicketAttachment:
    """A file attached to a ticket the viewer may write in (a CLOSED one too: a receipt sent after).
    Bounded: ATTACHMENTS_PER_TICKET per ticket, ATTACHMENT_MAX_BYTES each, ATTACHMENT_BYTES_PER_DAY
    per organization in 24 hours (LIMIT_EXCEEDED)."""
    viewer = ctx.require_viewer()
    ticket = await ticket_to_write(ctx, ticket_id)
    name = clean_filename(filename)
    if not name:
        raise UserFacingError(ErrorCode.INVALID, "Give the file's name.", "filename")
    content = decode_content(content_base64)
    file_type = file_type_of(name, content)
    if await TicketAttachment.filter(ticket_id=ticket.id).count() >= ATTACHMENTS_PER_TICKET:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED, f"A ticket holds at most {ATTACHMENTS_PER_TICKET} files.", "ticket_id",
        )
    await one_writer(ticket.organization_id)
    sent = await TicketAttachment.filter(
        organization_id=ticket.organization_id, created_at__gte=utcnow() - DAY,
    ).annotate(total=Sum("size")).first().values("total")
    sent = (sent or {}).get("total")
    if (sent or 0) + len(content) > ATTACHMENT_BYTES_PER_DAY:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED,
            f"Your organization has attached {ATTACHMENT_BYTES_PER_DAY // (1024 * 1024)} MB in the last 24 hours, "
            "the most a day: try again later.",
            "content_base64",
        )
    attachment = await TicketAttachment.create(
        ticket=ticket, organization_id=ticket.organization_id, uploaded_by_id=viewer.user_id, filename=name,
        content_type=file_type.content_type, size=len(content),
    )
    await TicketAttachmentFile.create(attachment=attachment, content=content)
    await tickets.attached(ctx, ticket)
    return attachment


# ---------------------------------------------------------------------------------------- the download door


def sign_attachment(settings: Settings, attachment_id: uuid.UUID, user_id: uuid.UUID, now: float | None = None) -> str:
    """`/ticket-files/<attachment>/<user>/<expires>/<signature>`: for this attachment and this viewer
    until it expires; the door asks again whether that viewer may still see the ticket."""
    expires = int((now or timestamp()) + settings.download_url_seconds)
    signature = _signature(settings, attachment_id, user_id, expires)
    return f"{settings.public_url}/ticket-files/{attachment_id}/{user_id}/{expires}/{signature}"


def _signature(settings: Settings, attachment_id: uuid.UUID, user_id: uuid.UUID, expires: int) -> str:
    digest = hmac.new(
        derived_key(settings, "ticket-attachment"), f"{attachment_id}:{user_id}:{expires}".encode(), hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str  # as served: the stored type for PDF and images, application/octet-stream otherwise
    content: bytes


async def attachment_for_download(
    settings: Settings, attachment_id: str, user_id: str, expires: str, signature: str,
) -> Download | None:
    """The file, when the link is ours and unexpired AND its viewer may see the ticket now: an active
    staff member, the OWNER/ADMIN of the ticket's organization, or its author while still a member
    (a removed member's or a demoted one's link stops working). None for anything else."""
    try:
        attachment_pk, user_pk, expires_at = uuid.UUID(attachment_id), uuid.UUID(user_id), int(expires)
    except ValueError:
        return None
    expected = _signature(settings, attachment_pk, user_pk, expires_at)
    if not hmac.compare_digest(expected, signature) or expires_at < timestamp():
        return None
    attachment = await TicketAttachment.get_or_none(id=attachment_pk)
    user = await User.get_or_none(id=user_pk)
    if attachment is None or user is None or not user.is_active:
        return None
    ticket = await SupportTicket.get(id=attachment.ticket_id)
    # the link's viewer as they are now, asked the one Ticket rule (resolvers/common/permissions.py)
    viewer = RequestContext(settings=settings, viewer=Viewer(user.id, user.id))
    await viewer.memberships()
    await viewer.prepare_staff_flag()
    if TYPE_RULES["Ticket"](viewer, ticket) is not Sight.SEE:
        return None
    stored = await TicketAttachmentFile.get_or_none(attachment_id=attachment.id)
    if stored is None:
        return None
    extension = attachment.filename.rpartition(".")[2].lower()
    file_type = FILE_TYPES.get(extension)
    served = attachment.content_type if file_type is not None and file_type.inline_safe else "application/octet-stream"
    return Download(attachment.filename, served, bytes(stored.content))
