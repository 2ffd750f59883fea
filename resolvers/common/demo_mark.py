"""Whether this database holds the demo data set: a mark that outlives restarts and upgrades.

Seeding the demo (kabinet/demo/) writes an entry of the provider's audit (`demo.seed`) in its own
transaction, so the mark exists exactly when the demo's rows do. Databases seeded before the mark
existed are known by the demo supplier's requisites row, which the seeding wrote and nothing
removes (each change of the requisites is a new row). Two readers: the cluster mode (the
simulated cluster runs by default only on the embedded default's demo) and `kabinet doctor`.
"""

from __future__ import annotations

from models.billing import SupplierRequisites
from models.identity import User
from models.provider import ProviderAction
from resolvers.provider.audit import ActorKind, record_action

SEEDED = "demo.seed"  # the provider audit's action that marks the demo data set
DEMO_BY = "demo"  # `configured_by` of the demo supplier's requisites row


async def mark_seeded(by: str) -> None:
    """In the seeding's transaction: this database now holds the demo data set."""
    await record_action(ActorKind.CLI, by, SEEDED, "the demo data set", {"password": "published (README: Try it)"})


async def seeded() -> bool:
    """Whether the demo data set was ever seeded here: the demo supplier's row (the small table first:
    the workers ask every few seconds on SQLite), else the mark (a seeding onto requisites configured
    before it writes no supplier row)."""
    if await SupplierRequisites.exists(configured_by=DEMO_BY):
        return True
    return await ProviderAction.exists(action=SEEDED)


async def demo_supplier_in_force() -> bool:
    """Whether the requisites documents print now are the demo's (a bank that does not exist)."""
    latest = await SupplierRequisites.all().order_by("-created_at").first()
    return latest is not None and latest.configured_by == DEMO_BY


async def logins_present(emails: list[str]) -> list[str]:
    """Which of these (the demo's people) can sign in here: active accounts with these e-mails."""
    return sorted(await User.filter(email__in=emails, is_active=True).values_list("email", flat=True))
