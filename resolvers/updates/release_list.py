"""The releases of one configuration (`Query.releases`), newest publication first, recalled ones
included (their `recalledAt` says so). Who may list them: the provider's staff, and any member (any
role) of an organization with a database of that configuration; anyone else gets an empty list, so
the list tells nobody which configurations the provider serves."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from models.cloud import Database
from models.updates import Release
from resolvers.common.gates import page_request, wants_total
from resolvers.common.context import RequestContext
from resolvers.common.pagination import Ordering, Page, load_pages
from resolvers.common.errors import bad_user_input

RELEASE_ORDER = Ordering(("-published_at",))
CONFIGURATION_MAX_LENGTH = 200


async def may_list(ctx: RequestContext, configuration: str) -> bool:
    """Staff, or a member of an organization having a database of `configuration`."""
    ctx.require_viewer()
    if await ctx.prepare_staff_flag():
        return True
    memberships = await ctx.memberships()
    return bool(memberships) and await Database.exists(organization_id__in=list(memberships), configuration=configuration)


async def releases_of_configuration(ctx: RequestContext, configuration: str, args: dict[str, Any]) -> Page[Release]:
    configuration = configuration.strip()
    if not configuration or len(configuration) > CONFIGURATION_MAX_LENGTH:
        raise bad_user_input(f"`configuration`: от 1 до {CONFIGURATION_MAX_LENGTH} символов.")
    request = page_request(ctx, args)
    if not await may_list(ctx, configuration):
        return Page(ordering=RELEASE_ORDER, total_count=0 if wants_total(args) else None)
    pages = await load_pages(
        Release, None, (), RELEASE_ORDER, request, filters=Q(configuration=configuration), with_total=wants_total(args),
    )
    return pages[None]
