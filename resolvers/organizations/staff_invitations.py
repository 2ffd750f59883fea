"""The provider's staff putting people into any organization: an invitation in its name (an OWNER one
to a customer without an owner), and an owner made of a member. Invitations themselves are
resolvers/organizations/invitations.py's (`create_invite`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass


from models.cloud import Database
from models.organizations import Invite, Membership, Organization, Role
from resolvers.common import validation
from foundation.settings import Settings
from resolvers.common.gates import check_approved
from resolvers.common.context import Actor
from resolvers.common.errors import not_found
from resolvers.organizations.memberships import end_subscriptions, organization_databases
from resolvers.common.staff_rights import Caller, staff_for_change
from resolvers.organizations.invitations import INVITES_ONCE_APPROVED, Address, _refuse_an_owner, address_of, create_invite

MAX_DATABASES_NAMED = 100  # an invitation's databases named in one request
STAFF_ONLY = "Only the provider's staff put people into any organization (invite them, make an owner)."


async def _staff_organization(organization_id: uuid.UUID) -> Organization:
    """The organization staff act on, locked; NOT_FOUND on `organization_id`, INVALID unless APPROVED."""
    organization = await Organization.filter(id=organization_id).select_for_update().first()
    if organization is None:
        raise not_found("organization", "organization_id")
    check_approved(organization, "organization_id", INVITES_ONCE_APPROVED)
    return organization


async def staff_invite_member(
    caller: Caller, settings: Settings, organization_id: uuid.UUID, email: str | None, phone: str | None, role: Role,
    database_ids: Sequence[uuid.UUID],
) -> Invite:
    """Staff invite someone into any APPROVED organization, as its owner would (`create_invite`):
    never as the OWNER (that is `staff_make_owner`, for an organization without one). In the
    organization's audit (the staff named) and the provider's."""
    staff = await staff_for_change(caller, STAFF_ONLY)
    organization = await _staff_organization(organization_id)
    address = address_of(email, phone)
    if role == Role.OWNER:
        raise validation.invalid(
            "role", "Nobody is invited as the owner this way: an organization that has none is given one by "
            "staffMakeOwner (POST …/staff/organizations/make-owner, `kabinet staff make-owner`).",
        )
    databases = await organization_databases(organization.id, database_ids, "database_ids")
    invite = await create_invite(caller, settings, organization, address, role, databases,
                                  inviter=staff.user, staff=staff)
    await staff.audit("organization.invite", f"INN {organization.inn}", {
        "organizationId": str(organization.id), "inviteId": str(invite.id), "email": address.email,
        "phone": address.phone, "role": role.value, "databaseIds": [str(d.id) for d in databases],
    })
    return invite


@dataclass
class MadeOwner:
    """What `staff_make_owner` did: a member promoted (`membership`), or an OWNER invitation sent (`invite`)."""

    organization: Organization
    membership: Membership | None = None
    invite: Invite | None = None


async def staff_make_owner(
    caller: Caller, settings: Settings, organization_id: uuid.UUID, email: str | None, phone: str | None,
) -> MadeOwner:
    """Staff give an APPROVED organization that has no owner (its only owner left; the provider sent
    it and nobody claimed it) one: the member whose proven address this is becomes the OWNER
    (`moderation.make_owner`); an address that is no member's is invited as the OWNER
    (`create_invite`), and whoever accepts, proving the address, becomes it. CONFLICT while the
    organization has an owner (the owner invites, or hands it over). Audited; events published."""
    from resolvers.organizations import moderation  # it imports what imports this module

    staff = await staff_for_change(caller, STAFF_ONLY)
    organization = await _staff_organization(organization_id)
    await _refuse_an_owner(organization, "organization_id")
    address = address_of(email, phone)
    member = await _member_at(organization.id, address)
    actor: Actor = caller  # a staff member's request, or the service account or operator: each records events and audit
    if member is not None:
        await moderation.make_owner(
            actor, organization, member.user_id, action="organization.owner_made", field="organization_id",
            details={"by": "staff", "byStaff": {"kind": staff.kind, "name": staff.name}, "fromRole": member.role.value},
        )
        member = await Membership.get(id=member.id)
        await end_subscriptions(actor, member)  # opened with the rights of the role they had
        made = MadeOwner(organization, membership=member)
    else:
        made = MadeOwner(organization, invite=await create_invite(
            actor, settings, organization, address, Role.OWNER, [], inviter=staff.user, staff=staff,
        ))
    await staff.audit("organization.make_owner", f"INN {organization.inn}", {
        "organizationId": str(organization.id), "email": address.email, "phone": address.phone,
        **({"promotedUserId": str(member.user_id)} if made.membership else {"inviteId": str(made.invite.id)}),
    })
    return made




async def _member_at(organization_id: uuid.UUID, address: Address) -> Membership | None:
    """The member whose proven e-mail or phone is this address (None: nobody's); INVALID when the
    e-mail and the phone given are not one member's (another member's, or a member's and nobody's)."""
    found = {
        value: await Membership.get_or_none(organization_id=organization_id, user__is_active=True, **{f"user__{column}": value})
        for value, column in ((address.email, "email"), (address.phone, "phone")) if value
    }
    members = {m.id if m else None for m in found.values()}
    if len(members) > 1:
        raise validation.invalid("email", "This e-mail and this phone are not one member's: give only one of them.")
    return next(iter(found.values()))


def role_named(name: str, field: str = "role") -> Role:
    """A role by its name (any case); INVALID on `field` otherwise (the HTTP API's and the CLI's)."""
    value = (name or "").strip().upper()
    if value not in Role.__members__:
        raise validation.invalid(field, f"A role is one of {', '.join(Role.__members__)}.")
    return Role(value)


async def databases_named(organization_id: uuid.UUID, names: Sequence[str], field: str) -> list[uuid.UUID]:
    """The organization's databases as the provider names them (their external ids: the HTTP API's
    and the CLI's way), in the order given; NOT_FOUND on `field` for any other."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name and name.strip()))
    if len(wanted) > MAX_DATABASES_NAMED:
        raise validation.invalid(field, f"At most {MAX_DATABASES_NAMED} databases.")
    if any(len(name) > 200 or "\x00" in name for name in wanted):
        raise not_found("database", field)
    found = {d.external_id: d.id for d in await Database.filter(organization_id=organization_id, external_id__in=wanted)} if wanted else {}
    if len(found) != len(wanted):
        raise not_found("database", field)
    return [found[name] for name in wanted]
