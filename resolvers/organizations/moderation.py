"""The provider's moderation of organizations and who becomes a customer's owner.

Per INN there is at most one customer (APPROVED: the organization the provider's records sent, or a
claim that was approved) and at most one claim awaiting moderation (PENDING, a tenant's, with the
tenant as its OWNER; models/organizations.py holds both in the database). INNs are public, so a
claim proves nothing: the provider's data never binds to it, and it becomes the customer only by
proof — staff approving it, or its owner's SMS-verified phone being one the provider lists for that
INN (a known contact) — in whichever order the claim, the contact and the provider's record arrive.
A proven claim is approved in place when the provider has not sent that INN; when it has, the claim
folds into the provider's organization (`make_owner`): its owner becomes that organization's OWNER.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.audit import AuditEntry
from models.events import EventCounter
from models.identity import User
from models.organizations import JoinRequest, KnownContact, Membership, ModerationStatus, Organization, Role
from resolvers.common import audit
from resolvers.identity import api_tokens
from events import log as events
from resolvers.common import outbox
from resolvers.common import validation
from resolvers.common.gates import related_one
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, Refusal, UserFacingError, not_found
from resolvers.common.pagination import Ordering, Page, PageRequest, load_pages
from resolvers.common.staff_rights import Caller, StaffMember, staff_for_change, staff_for_reading

MODERATION_ORDER = Ordering(("created_at",))
STAFF_ONLY = "Only the provider's staff moderate organizations."


async def is_known_contact(user: User, inn: str) -> bool:
    """The known-contact rule: the user's phone, verified by an SMS code, is one the provider lists
    for this INN (a `known_contact` record)."""
    return bool(user.phone and user.phone_verified and await KnownContact.exists(inn=inn, phone=user.phone))


async def customer_of_inn(inn: str) -> Organization | None:
    """The INN's customer (APPROVED: the provider's, or a claim approved), locked; None if there is none."""
    return await Organization.filter(inn=inn, moderation_status=ModerationStatus.APPROVED).select_for_update().first()


async def claim_of_inn(inn: str) -> Organization | None:
    """The INN's claim that is not (yet) a customer — PENDING or REJECTED — locked; None if there is none."""
    return await Organization.filter(inn=inn).exclude(moderation_status=ModerationStatus.APPROVED).select_for_update().first()


def status_named(name: str, field: str) -> ModerationStatus | None:
    """A moderation status by its name (any case), or None for ALL; INVALID on `field` otherwise."""
    name = name.strip().upper()
    if name == "ALL":
        return None
    if name not in ModerationStatus.__members__:
        raise Refusal("INVALID", f"`{field}` is one of {', '.join(ModerationStatus.__members__)} or ALL.")
    return ModerationStatus(name)


async def _staff(caller: Caller) -> StaffMember:
    """The caller with staff rights (a staff member, or a service token with the `staff` scope);
    FORBIDDEN (a mutation's userError) for anyone else."""
    return await staff_for_change(caller, STAFF_ONLY)


async def organization_id_by_inn(caller: Caller, inn: str, kpp: str | None = None, *, customer: bool = False) -> uuid.UUID:
    """Staff (the provider HTTP API and the CLI name organizations as its accounting does): the
    organization of this INN, and of this KPP when one is given; NOT_FOUND when none is. Where a claim
    stands beside the INN's customer, the claim: it is what staff approve or reject; with `customer`,
    the customer: it is what people are put into."""
    await _staff(caller)
    inn, kpp = (inn or "").strip(), (kpp or "").strip() or None
    if not inn:
        raise UserFacingError(ErrorCode.INVALID, "Name the organization by its INN.", "inn")
    if not (inn.isascii() and inn.isdigit() and len(inn) in (10, 12)):
        raise UserFacingError(ErrorCode.INVALID, "An INN is 10 or 12 digits.", "inn")
    if kpp is not None and not (kpp.isascii() and kpp.isdigit() and len(kpp) == 9):
        raise UserFacingError(ErrorCode.INVALID, "A KPP is 9 digits.", "kpp")
    rows = await Organization.filter(inn=inn).values("id", "kpp", "moderation_status")
    if kpp is not None:
        rows = [row for row in rows if row["kpp"] == kpp]
    if len(rows) > 1:
        rows = [row for row in rows if (ModerationStatus(row["moderation_status"]) == ModerationStatus.APPROVED) == customer] or rows
    if not rows:
        raise UserFacingError(ErrorCode.NOT_FOUND, f"No organization has the INN {inn}{f' and the KPP {kpp}' if kpp else ''}.", "inn")
    if len(rows) > 1:
        raise UserFacingError(ErrorCode.CONFLICT, f"Several organizations have the INN {inn}: name the KPP too.", "kpp")
    return rows[0]["id"]


async def _organization_to_moderate(organization_id: uuid.UUID) -> Organization:
    row = await Organization.filter(id=organization_id).select_for_update().first()
    if row is None:
        raise not_found("organization", "organization_id")
    return row


async def approve_organization(caller: Caller, organization_id: uuid.UUID) -> Organization:
    """Staff: a claim PENDING (or REJECTED, on second thought) is proven (`accept_claim`); also in
    the provider's own audit. The customer it is now: the claim approved, or the provider's
    organization of its INN that it folded into."""
    staff = await _staff(caller)
    organization = await _organization_to_moderate(organization_id)
    if organization.moderation_status == ModerationStatus.APPROVED:
        raise UserFacingError(ErrorCode.CONFLICT, "This organization is already approved.", "organization_id")
    await staff.audit(
        "organization.approve", f"INN {organization.inn}", {"organizationId": str(organization.id), "name": organization.name},
    )
    return await accept_claim(caller, organization, {"by": "staff"}, field="organization_id")


async def accept_claim(
    actor: Actor, claim: Organization, details: dict[str, Any], *, field: str | None = None
) -> Organization:
    """A claim proven (staff approved it, or its owner is a known contact of its INN): the INN's
    customer. When the INN has one (the provider sent it), the claim folds into it (`make_owner`);
    else the claim itself is approved (`approve`). The caller holds the claim locked. CONFLICT on
    `field` when the customer has an owner already (staff reject the claim; its owner may ask to join)."""
    customer = await customer_of_inn(claim.inn)
    if customer is None:
        return await approve(actor, claim, details, field=field)
    owner = await Membership.get_or_none(organization_id=claim.id, role=Role.OWNER)
    if owner is None:
        raise UserFacingError(ErrorCode.CONFLICT, "This claim has no owner to make the customer's owner: reject it.", field)
    return await make_owner(actor, customer, owner.user_id, claim=claim, details=details, field=field)


async def approve(
    actor: Actor, organization: Organization, details: dict[str, Any] | None = None, *, field: str | None = None
) -> Organization:
    """A claim approved in place, the INN having no customer yet (`accept_claim` decides): its owner
    is told by e-mail. The caller holds the row locked and has checked it is not APPROVED yet.
    CONFLICT on `field` when the provider's organization of the INN arrived meanwhile."""
    organization.moderation_status, organization.moderation_note = ModerationStatus.APPROVED, None
    try:
        async with in_transaction():  # a savepoint: the INN's one customer may have arrived meanwhile
            await organization.save(update_fields=["moderation_status", "moderation_note"])
    except IntegrityError:
        raise UserFacingError(
            ErrorCode.CONFLICT, f"The provider's organization of INN {organization.inn} arrived a moment ago: approve again.", field,
        ) from None
    if owner_email := await _owner_email(organization):
        await outbox.email(
            owner_email, "organization_approved", organization_name=organization.name, inn=organization.inn,
            organization_code=organization.code,
        )
    await audit.record(
        actor, "organization.approved", organization_id=organization.id, object_type="Organization",
        object_id=organization.id, details=details,
    )
    await actor.record_event(organization.id, events.DATA, "CHANGED", {"areas": ["organization"]})
    return organization


# What a claim may hold when it folds into the customer: its members, their requests to join and
# its history move; its own event log goes with it. Anything else (the provider's data, which no
# claim receives since issue 17) refuses the fold rather than be lost.
_FOLDED = frozenset({"memberships", "join_requests", "audit_entries", "events", "invites"})


async def make_owner(
    actor: Actor, customer: Organization, user_id: uuid.UUID, *, claim: Organization | None = None,
    position: str | None = None, details: dict[str, Any] | None = None, field: str | None = None,
    action: str = "organization.claimed",
) -> Organization:
    """The one way a person becomes the OWNER of a customer nobody owns yet (the provider sent it):
    by proof only — staff approving their claim, or the known-contact rule. With their `claim`, the
    claim folds into the customer: its members move (its OWNER becomes the customer's), so do its
    join requests and audit entries, and the claim row is deleted (one organization per customer:
    no second id that half works, no second subscriber code; the customer's audit log keeps the
    claim's history and this entry names it). Without one (a known contact adding the INN), the user
    joins as OWNER with `position` (a member is promoted). Also the way an organization whose only
    owner left gets one: staff promote a member, or the holder of an OWNER invitation they sent
    accepts it (resolvers/organizations/invitations.py; `action` names which in the audit). Audited, a DATA event
    for the customer, its other pending OWNER invitations withdrawn (it has one now), the owner told
    by e-mail when someone else decided. CONFLICT on `field` when the customer has an owner already."""
    customer = await Organization.filter(id=customer.id).select_for_update().first() or customer
    if await Membership.exists(organization_id=customer.id, role=Role.OWNER):
        raise UserFacingError(
            ErrorCode.CONFLICT,
            f"The provider's organization of INN {customer.inn} has an owner already: reject the claim; its owner may ask to join.",
            field,
        )
    record = {"inn": customer.inn, "ownerId": str(user_id), **(details or {})}
    if claim is None:
        if await Membership.filter(organization_id=customer.id, user_id=user_id).update(role=Role.OWNER) == 0:
            await Membership.create(organization_id=customer.id, user_id=user_id, role=Role.OWNER, position=position)
    else:
        record.update(claimId=str(claim.id), claimedAt=claim.created_at.isoformat(), claimCode=claim.code)
        await _fold(claim, customer, user_id, field)
    from resolvers.organizations import invitations  # it imports this module

    withdrawn = await invitations.withdraw(customer.id, Q(role=Role.OWNER))
    if withdrawn:
        record["withdrawnOwnerInviteIds"] = [str(pk) for pk in withdrawn]
    await audit.record(
        actor, action, organization_id=customer.id, object_type="Organization", object_id=customer.id,
        details=record,
    )
    await actor.record_event(customer.id, events.DATA, "CHANGED", {"areas": ["organization"]})
    if claim is not None and (owner := await User.get_or_none(id=user_id)) and owner.email:
        await outbox.email(
            owner.email, "organization_approved", organization_name=customer.name, inn=customer.inn,
            organization_code=customer.code,
        )
    return customer


async def _fold(claim: Organization, customer: Organization, owner_id: uuid.UUID, field: str | None) -> None:
    """The claim's members, join requests and audit entries moved to the customer (`owner_id` its
    OWNER), the claim deleted; CONFLICT when it holds anything else (it is left as it was)."""
    await api_tokens.drop_claims_tokens(claim.id)  # a claim's API tokens end with it (rolled back with a refusal)
    meta = Organization._meta
    for name in sorted((meta.backward_fk_fields | meta.backward_o2o_fields) - _FOLDED):
        relation = meta.fields_map[name]
        if await relation.related_model.filter(**{relation.relation_field: claim.id}).exists():
            raise UserFacingError(
                ErrorCode.CONFLICT, f"This claim holds {name.replace('_', ' ')} of its own: it cannot join the provider's "
                f"organization of INN {customer.inn}. Reject it, or move them first.", field,
            )
    already = set(await Membership.filter(organization_id=customer.id).values_list("user_id", flat=True))
    for membership in await Membership.filter(organization_id=claim.id):
        role = Role.OWNER if membership.user_id == owner_id else membership.role
        if membership.user_id in already:  # a member there already keeps that role; the claimant becomes OWNER
            if membership.user_id == owner_id:
                await Membership.filter(organization_id=customer.id, user_id=owner_id).update(role=Role.OWNER)
            await membership.delete()
        else:
            await Membership.filter(id=membership.id).update(organization_id=customer.id, role=role)
    await JoinRequest.filter(organization_id=claim.id).update(organization_id=customer.id)
    await AuditEntry.filter(organization_id=claim.id).update(organization_id=customer.id)
    await claim.delete()  # its invitations (none: a claim does not invite) and event log with it
    await EventCounter.filter(organization_id=claim.id).delete()


async def approve_known_claims(actor: Actor, inns: Iterable[str], details: dict[str, Any] | None = None) -> list[Organization]:
    """The known-contact rule applied after the fact (a contact, or the provider's organization,
    arrived after the claim): the PENDING claims of these INNs whose OWNER is now a known contact
    are accepted (`accept_claim`), as they would have been at claim time. A claim that cannot be
    (the customer has an owner already) stays for staff. The customers they became."""
    inns = sorted(set(inns))
    if not inns:
        return []
    accepted = []
    for claim in await Organization.filter(inn__in=inns, moderation_status=ModerationStatus.PENDING).select_for_update():
        owner = await Membership.get_or_none(organization_id=claim.id, role=Role.OWNER)
        user = await User.get_or_none(id=owner.user_id) if owner else None
        if user is None or not await is_known_contact(user, claim.inn):
            continue
        try:
            async with in_transaction():  # a savepoint: a claim that cannot be accepted leaves the rest intact
                accepted.append(await accept_claim(actor, claim, details or {}))
        except UserFacingError:
            continue
    return accepted


async def reject_organization(caller: Caller, organization_id: uuid.UUID, reason: str) -> Organization:
    """PENDING → REJECTED with the reason the owner is given; an approved subscriber cannot be."""
    staff = await _staff(caller)
    reason = validation.non_empty(reason, "reason", "A reason", max_length=500)
    organization = await _organization_to_moderate(organization_id)
    if organization.moderation_status != ModerationStatus.PENDING:
        raise UserFacingError(
            ErrorCode.CONFLICT, f"Only a PENDING organization can be rejected; this one is {organization.moderation_status.value}.",
            "organization_id",
        )
    organization.moderation_status, organization.moderation_note = ModerationStatus.REJECTED, reason
    await organization.save(update_fields=["moderation_status", "moderation_note"])
    if owner_email := await _owner_email(organization):
        await outbox.email(owner_email, "organization_rejected", inn=organization.inn, reason=reason)
    await audit.record(
        caller, "organization.rejected", organization_id=organization.id, object_type="Organization",
        object_id=organization.id, details={"reason": reason},
    )
    await staff.audit(
        "organization.reject", f"INN {organization.inn}",
        {"organizationId": str(organization.id), "name": organization.name, "reason": reason},
    )
    return organization


async def _owner_email(organization: Organization) -> str | None:
    """Where the owner is told about moderation (None: no owner, or one without an e-mail)."""
    owner = await Membership.get_or_none(organization_id=organization.id, role=Role.OWNER)
    user = await User.get_or_none(id=owner.user_id) if owner else None
    return user.email if user else None


async def organizations_for_moderation(
    caller: Caller, status: ModerationStatus | None, page: PageRequest, *, with_total: bool = False
) -> Page:
    """Staff only (FORBIDDEN for anyone else): organizations by moderation status, oldest first."""
    await staff_for_reading(caller, STAFF_ONLY)
    pages = await load_pages(
        Organization, None, (), MODERATION_ORDER, page,
        filters=Q(moderation_status=status) if status else None, with_total=with_total,
    )
    return pages[None]


async def owners_of(ctx: RequestContext, organizations: list[Organization], args: dict[str, Any]) -> list:
    owners = await Membership.filter(organization_id__in=[o.id for o in organizations], role=Role.OWNER)
    users = await related_one(User, owners, "user_id")
    by_org = {m.organization_id: u for m, u in zip(owners, users)}
    return [by_org.get(o.id) for o in organizations]


@dataclass(frozen=True)
class Claimant:
    """Who claims an organization (its OWNER), with what they proved, as staff moderating it see them."""

    user: User
    claimed_at: dt.datetime  # when they became its owner
    known_contact: bool  # their verified phone is one the provider lists for the INN


async def claimants_of(ctx: Caller, organizations: list[Organization], args: dict[str, Any]) -> list[Claimant | None]:
    """Each organization's OWNER as a `Claimant` (None: nobody owns it), in three queries for them all."""
    owners = await Membership.filter(organization_id__in=[o.id for o in organizations], role=Role.OWNER)
    users = {u.id: u for u in await User.filter(id__in=[m.user_id for m in owners])}
    phones = {u.phone for u in users.values() if u.phone and u.phone_verified}
    known = set(await KnownContact.filter(inn__in=list({o.inn for o in organizations}), phone__in=list(phones)).values_list("inn", "phone")) if phones else set()
    by_organization = {m.organization_id: m for m in owners}
    claimants: list[Claimant | None] = []
    for organization in organizations:
        owner = by_organization.get(organization.id)
        user = users.get(owner.user_id) if owner else None
        claimants.append(None if user is None else Claimant(
            user, owner.created_at, bool(user.phone_verified and (organization.inn, user.phone) in known),
        ))
    return claimants


async def customers_beside(ctx: Caller, organizations: list[Organization], args: dict[str, Any]) -> list[Organization | None]:
    """For each claim (not APPROVED), the customer of its INN that stands beside it — the provider's
    organization, which approving the claim makes its owner the OWNER of; None for a customer, or a
    claim of an INN without one. One query."""
    claims = [o for o in organizations if o.moderation_status != ModerationStatus.APPROVED]
    customers = {
        row.inn: row for row in await Organization.filter(
            inn__in=list({o.inn for o in claims}), moderation_status=ModerationStatus.APPROVED,
        )
    } if claims else {}
    return [customers.get(o.inn) if o.moderation_status != ModerationStatus.APPROVED else None for o in organizations]
