"""Agent tokens for the tests, issued through the token store as `kabinet agent token create` does."""

from __future__ import annotations

import datetime as dt
import uuid

from foundation.clock import utcnow
from models.cloud import CloudSubscription
from resolvers.cloud import agent_tokens
from resolvers.provider.audit import ActorKind
from tests import factories
from tests.factories import Role

OPERATOR = (ActorKind.CLI, "test")


async def issue(organizations=None, *, name: str | None = None) -> str:
    """A new agent token for these organizations (None: every organization)."""
    codes = [o.code for o in organizations] if organizations is not None else None
    _, token = await agent_tokens.create(
        name or f"agent-{uuid.uuid4().hex[:10]}", codes, all_organizations=organizations is None, by=OPERATOR
    )
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def subscribed(sessions_limit: int = 2):
    """An organization with a team, a cloud subscription (so the agent is told its limits) and a database."""
    org, team = await factories.create_team(Role.OWNER, Role.ADMIN, Role.USER)
    today = utcnow().date()
    subscription = await CloudSubscription.create(
        organization=org, tariff="Облако", sessions_limit=sessions_limit, databases_limit=3,
        starts_on=today.replace(day=1), ends_on=today + dt.timedelta(days=30),
    )
    return org, team, subscription, await factories.create_database(org)
