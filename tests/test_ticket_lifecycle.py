"""One owner of a support ticket's lifecycle: no module but resolvers/support/tickets.py writes a ticket, its
history or its files (created, commented, answered, closed, reopened, status set, a file attached:
each one function there, which records the ticket's event). The demo seeds through it too
(`tickets.seed`). The sources are read as Python (ast), so a comment or a string does not count."""

from __future__ import annotations

from pathlib import Path

from tests.writers import ROOT, Owned, writers

OWNER = Path("resolvers/support/tickets.py")
FILES_OWNER = Path("resolvers/support/attachments.py")
TICKET = Owned(
    models=frozenset({"SupportTicket", "TicketComment"}),
    fields=frozenset({"status", "closed_at", "updated_at"}),
    is_row=lambda name: "ticket" in name.lower(), enum="TicketStatus", whole_row=True,
)


def test_only_resolvers_tickets_writes_a_ticket():
    offenders = writers(TICKET, OWNER)
    assert offenders == {}, f"a ticket is written outside resolvers/support/tickets.py; call its transition instead: {offenders}"


FILES = Owned(
    models=frozenset({"TicketAttachment", "TicketAttachmentFile"}), fields=frozenset(),
    is_row=lambda name: "attachment" in name.lower(), whole_row=True,
)


def test_only_resolvers_attachments_writes_a_tickets_files():
    """A ticket's files are attachments.py's (`attach`), which moves the ticket through tickets.py `attached`."""
    offenders = writers(FILES, FILES_OWNER)
    assert offenders == {}, f"a ticket's file is written outside resolvers/support/attachments.py: {offenders}"
    assert FILES.writes((ROOT / FILES_OWNER).read_text(encoding="utf-8"))


def test_the_owner_itself_is_seen_writing():
    assert TICKET.writes((ROOT / OWNER).read_text(encoding="utf-8")), "the scan sees nothing in the owner"
