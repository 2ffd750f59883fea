"""A document's PDF as a record carries it: `file_base64` (the HTTP API and imports), or `file_path`,
read by `kabinet import` only under the imported file's folder or `--files-root` (`DocumentFiles`).

Whatever the door, the document's upsert (billing.py) reads it with `provided_pdf`; the importer
only says where a record's files are (an `ImportedRecord` carries its `DocumentFiles`).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from foundation.settings import Settings
from resolvers.provider.lines import Record, RecordRefused

MAX_BYTES = Settings.model_construct().provider_max_body_bytes  # the default limit, for a caller that passes none
PDF_MAGIC = b"%PDF"


@dataclass(frozen=True)
class DocumentFiles:
    """Where the documents an import names by `file_path` may be read: relative to the import file's
    folder (`folder`), and only under `root` — that folder, or the one `--files-root` names (`named`).
    Never `..` out of it, an absolute path elsewhere (or at all, unless a root was named) nor a
    symbolic link leading out; a regular file of at most `max_bytes`."""

    folder: Path
    root: Path
    named: bool = False
    max_bytes: int = MAX_BYTES

    @classmethod
    def beside(cls, path: Path, files_root: Path | None = None, max_bytes: int = MAX_BYTES) -> DocumentFiles:
        folder = Path(path).absolute().parent
        return cls(folder, Path(files_root or folder).resolve(), files_root is not None, max_bytes)

    def read(self, file_path: str) -> bytes:
        """The file's bytes; RecordRefused on `file_path` naming why it is not read."""
        where = f"the files' root {self.root}" if self.named else "the import file's folder"
        asked = Path(file_path)
        if asked.is_absolute() and not self.named:
            raise RecordRefused("file_path", f"{file_path!r} is an absolute path: name the file relative to {where} "
                                "(or allow a folder with --files-root).")
        try:
            found = (self.folder / asked).resolve(strict=True)
        except (OSError, RuntimeError) as error:  # absent, unreadable, a loop of links
            raise RecordRefused("file_path", f"Cannot read {file_path}: {getattr(error, 'strerror', None) or error}.") from None
        if not found.is_relative_to(self.root):
            if asked.is_absolute():
                how = "an absolute path outside it"
            elif not Path(os.path.normpath(self.folder / asked)).is_relative_to(self.root):
                how = "`..` leads out of it"
            else:
                how = "a symbolic link leads out of it"
            raise RecordRefused("file_path", f"{file_path!r} is not under {where} ({how}): documents are read only there.")
        try:
            descriptor = os.open(found, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            raise RecordRefused("file_path", f"Cannot read {file_path}: {error.strerror or error}.") from None
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise RecordRefused("file_path", f"{file_path!r} is not a regular file.")
            if status.st_size > self.max_bytes:
                raise RecordRefused("file_path", f"{file_path!r} is over {self.max_bytes} bytes.")
            content = file.read(self.max_bytes + 1)
        if len(content) > self.max_bytes:
            raise RecordRefused("file_path", f"{file_path!r} is over {self.max_bytes} bytes.")
        return content


@dataclass
class ImportedRecord(Record):
    """A record read from a file: a document's `file_path` is read by `files` (the HTTP API has no
    such folder, so it takes `file_base64` only)."""

    files: DocumentFiles | None = None


def provided_pdf(record: Record) -> bytes | None:
    """The provider's PDF: `file_base64`, or `file_path` relative to the imported file (and under its folder)."""
    encoded, path = (record.values.get(name) for name in ("file_base64", "file_path"))
    if encoded not in (None, ""):
        try:
            content = base64.b64decode(str(encoded).strip(), validate=True)
        except (binascii.Error, ValueError):
            raise RecordRefused("file_base64", "Not base64.") from None
        field = "file_base64"
    elif path not in (None, ""):
        files = record.files if isinstance(record, ImportedRecord) else None
        if files is None:
            raise RecordRefused("file_path", "A file path is read by `kabinet import` only: send the PDF as file_base64.")
        content = files.read(str(path).strip())  # only under the import's folder
        field = "file_path"
    else:
        return None
    if not content.startswith(PDF_MAGIC):
        raise RecordRefused(field, "Not a PDF (it must start with %PDF).")
    return content
