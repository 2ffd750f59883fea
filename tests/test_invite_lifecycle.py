"""One owner of an invite's lifecycle: no module but resolvers/organizations/invitations.py writes an invite.

Created, resent, revoked, accepted: each transition is one function there, which writes the rows
and the audit record; expired is never written, only read (`invite_status.is_expired`). The sources
are read as Python (ast), so a comment or a string naming these calls does not count."""

from __future__ import annotations

from pathlib import Path

from tests.writers import ROOT, Owned, writers

OWNER = Path("resolvers/organizations/invitations.py")
INVITE = Owned(
    models=frozenset({"Invite", "InviteDatabase"}), fields=frozenset({"status"}),
    is_row=lambda name: "invite" in name.lower(), enum="InviteStatus", whole_row=True,
)
invite_writes = INVITE.writes
# Writers still to be moved onto the owner's functions, with how many writes each holds: the lead
# empties this (resolvers/registration.py `_claim_again` should call `invitations.withdraw`).
NOT_YET_MOVED: dict[str, int] = {}


def test_only_resolvers_invitations_writes_an_invite():
    offenders = writers(INVITE, OWNER)
    assert {name: len(found) for name, found in offenders.items()} == NOT_YET_MOVED, (
        "an invite is written outside resolvers/organizations/invitations.py; call its transition instead "
        f"(it records the audit entry): {offenders}"
    )


def test_the_owner_itself_is_seen_writing():
    """The scan finds what it looks for: the owner's own writes, and each kind of write."""
    assert invite_writes((ROOT / OWNER).read_text(encoding="utf-8")), "the scan sees nothing in the owner"
    samples = {
        "await Invite.create(status=InviteStatus.PENDING)": 1,
        "await InviteDatabase.create(invite_id=i, database_id=d)": 1,
        "await Invite.filter(id=x, status=InviteStatus.PENDING).update(status=InviteStatus.REVOKED)": 1,
        "await Invite.filter(organization_id=o).delete()": 1,
        "invite.status = InviteStatus.ACCEPTED": 1,
        "await invite.save(update_fields=['expires_at'])": 1,
        # Not writes: reading, other models, a status that is not an invite's.
        "await Invite.filter(status=InviteStatus.PENDING).count()": 0,
        "await Invite.get_or_none(token_hash=h)": 0,
        "request.status = JoinRequestStatus.APPROVED": 0,
        "await Membership.create(role=r)": 0,
        "if invite.status == InviteStatus.PENDING: pass": 0,
    }
    for source, expected in samples.items():
        assert len(invite_writes(source)) == expected, source
