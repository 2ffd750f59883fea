"""One owner of a queued message's delivery status: no module but resolvers/common/outbox.py changes it.

The mail worker (sent, a failed try, given up) and the staff's retry (workers/mail.py, the staff
desk in GraphQL and the provider HTTP API) all go through resolvers/common/outbox.py. Read as Python (ast,
tests/writers.py), so a comment that names these calls does not count."""

from __future__ import annotations

from pathlib import Path

from tests.writers import ROOT, Owned, writers

OWNER = Path("resolvers/common/outbox.py")
# Queuing a message (OutboxMessage.create, PENDING) is not a change of its status: creates do not count.
DELIVERY_STATUS = Owned(
    models=frozenset({"OutboxMessage"}), fields=frozenset({"status"}),
    is_row=lambda name: name in ("message", "outbox_message"), enum="DeliveryStatus",
    creates_any=False, saves_any=False,
)


def test_the_reader_sees_the_ways_of_writing_a_status():
    samples = {
        "await OutboxMessage.filter(id=1).update(status=DeliveryStatus.SENT)": 1,
        "message.status = DeliveryStatus.FAILED": 1,
        "await message.save(update_fields=['status'])": 1,
        # Not changes of the status: other fields, queuing, reading.
        "await OutboxMessage.filter(id=1).update(lease_owner=None)": 0,
        "await OutboxMessage.create(channel=c, recipient=r, subject='', body=b)": 0,
        "await OutboxMessage.filter(status=DeliveryStatus.FAILED).count()": 0,
    }
    for source, expected in samples.items():
        assert len(DELIVERY_STATUS.writes(source)) == expected, source


def test_only_resolvers_outbox_changes_a_messages_status():
    assert writers(DELIVERY_STATUS, OWNER) == {}, "change a message's status through resolvers/common/outbox.py"
    assert DELIVERY_STATUS.writes((ROOT / OWNER).read_text(encoding="utf-8")), "the owner writes the status"
