"""Adding an organization by its INN: a new INN makes the caller its OWNER, awaiting the provider's
moderation (moderation.py); an INN already here asks its owner and admins to let the caller in
(join_requests.py); a REJECTED one may be claimed again."""

from __future__ import annotations

from dataclasses import dataclass

from models.identity import User
from models.organizations import (
    JoinRequest, JoinRequestStatus, Membership, ModerationStatus, Organization, OrganizationKind, Role,
)
from resolvers import audit, invitations, join_requests, removals, validation
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, UserFacingError
from resolvers.identity import viewer_user
from resolvers.moderation import status_on_adding
from resolvers.subscriber_codes import new_organization


@dataclass
class AddedOrganization:
    """What `add_organization` did: created (or re-submitted) an organization, or asked to join one."""

    organization: Organization | None = None
    join_request: JoinRequest | None = None


def _default_name(kind: OrganizationKind, inn: str) -> str:
    return {
        OrganizationKind.LEGAL_ENTITY: f"Организация, ИНН {inn}",
        OrganizationKind.SOLE_PROPRIETOR: f"ИП, ИНН {inn}",
        OrganizationKind.INDIVIDUAL: f"Физическое лицо, ИНН {inn}",
    }[kind]


async def _reload_memberships(ctx: RequestContext) -> None:
    ctx.forget_memberships()
    await ctx.memberships()


async def add_organization(
    ctx: RequestContext, inn: str, kind: OrganizationKind, name: str | None, position: str
) -> AddedOrganization:
    """A new INN: the organization, the caller its OWNER, moderation PENDING (or APPROVED for a
    known contact). An INN already here: a join request to its owner and admins.

    A REJECTED organization's INN is not blocked for ever: its owner may submit it again, and
    anyone else who adds it takes over the claim (the rejected claim's members lose it).
    """
    user = await viewer_user(ctx)
    inn = validation.inn(inn, "inn", legal_entity=kind == OrganizationKind.LEGAL_ENTITY)
    position = validation.non_empty(position, "position", "Position")
    if name is not None and name.strip():
        name = validation.non_empty(name, "name", "Name", max_length=300)
    else:
        name = None
    existing = await Organization.filter(inn=inn).select_for_update().first()
    if existing is None:
        status = await status_on_adding(user, inn)
        organization = await new_organization(name or _default_name(kind, inn), inn, kind, status)
        if organization is not None:
            await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
            await audit.record(
                ctx, "organization.added", organization_id=organization.id, object_type="Organization",
                object_id=organization.id, details={"inn": inn, "moderation": status.value},
            )
            await _reload_memberships(ctx)
            return AddedOrganization(organization=organization)
        existing = await Organization.filter(inn=inn).select_for_update().first()
    membership = await Membership.get_or_none(organization_id=existing.id, user_id=user.id)
    if existing.moderation_status == ModerationStatus.REJECTED and (membership is None or membership.role == Role.OWNER):
        return AddedOrganization(organization=await _claim_again(ctx, user, existing, name, kind, position))
    if membership is not None:
        raise UserFacingError(ErrorCode.CONFLICT, "You already belong to this organization.", "inn")
    if not await Membership.exists(organization_id=existing.id, role=Role.OWNER):
        return AddedOrganization(organization=await _claim_ownerless(ctx, user, existing, position))
    if await JoinRequest.exists(organization_id=existing.id, user_id=user.id, status=JoinRequestStatus.PENDING):
        raise UserFacingError(
            ErrorCode.CONFLICT, "You have already asked to join this organization: wait for its administrator.", "inn",
        )
    return AddedOrganization(join_request=await join_requests.ask_to_join(ctx, user, existing, position))


async def _claim_ownerless(ctx: RequestContext, user: User, organization: Organization, position: str) -> Organization:
    """A customer the provider sent (its records) that nobody owns in the cabinet yet: the first to add
    it becomes its OWNER, if the provider knows their verified phone as a contact of that INN. Nobody
    else can: its ledger and documents are real, and there is no owner to ask."""
    if await status_on_adding(user, organization.inn) != ModerationStatus.APPROVED:
        raise UserFacingError(
            ErrorCode.INVALID,
            "This organization is your provider's customer and has no owner in the cabinet yet. Only a person whose "
            "confirmed phone the provider knows for this INN can become its owner: ask your provider to add your "
            "phone as a contact, or to invite you.",
            "inn",
        )
    await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
    await audit.record(
        ctx, "organization.claimed", organization_id=organization.id, object_type="Organization", object_id=organization.id,
        details={"inn": organization.inn, "by": "known contact"},
    )
    await _reload_memberships(ctx)
    return organization


async def _claim_again(
    ctx: RequestContext, user: User, organization: Organization, name: str | None, kind: OrganizationKind, position: str
) -> Organization:
    """A REJECTED organization goes back to moderation, owned by the caller."""
    previous_owners = await Membership.filter(organization_id=organization.id, role=Role.OWNER).values_list("user_id", flat=True)
    if user.id not in previous_owners:
        for membership in await Membership.filter(organization_id=organization.id):
            await removals.end_membership(ctx, membership, "member.remove")
        await join_requests.close_pending(organization.id)
        await invitations.withdraw(organization.id)
        await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
    else:
        await Membership.filter(organization_id=organization.id, user_id=user.id).update(position=position)
    organization.moderation_status = await status_on_adding(user, organization.inn)
    organization.moderation_note = None
    organization.kind = kind
    if name:
        organization.name = name
    await organization.save(update_fields=["moderation_status", "moderation_note", "kind", "name"])
    await audit.record(
        ctx, "organization.resubmitted", organization_id=organization.id, object_type="Organization",
        object_id=organization.id,
        details={"moderation": organization.moderation_status.value, "previous_owners": [str(u) for u in previous_owners]},
    )
    await _reload_memberships(ctx)
    return organization
