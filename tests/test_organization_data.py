"""`organizationData`: an open dashboard follows the provider's changes over a real WebSocket, each
viewer through their own role's rules, one message per committed batch."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest

from foundation.ids import to_global_id
from models.billing import BalanceTransaction, TransactionKind
from resolvers.provider import records
from resolvers.provider.records import SCOPES, Area, ProviderActor, Record
from tests import factories
from tests.live import TRANSPORT_WS, GraphQLSocket

DATA_SUBSCRIPTION = """subscription($org: ID!) { organizationData(organizationId: $org) {
  areas organization { name balance { amount } } } }"""


@pytest.fixture
def top_up_entity():
    """A provider entity for this test alone: each record adds a ledger entry (the real billing
    entities are tested in their own module); it goes through records.apply as every entity does."""

    @records.entity("test_top_up", "billing:write", ["organization", "amount"])
    async def upsert(actor: ProviderActor, batch: list[Record]) -> list[records.LineResult]:
        referenced = await records.organizations_referenced(batch, column="organization")

        async def one(record: Record) -> records.Outcome:
            org_id = records.organization_of(record, referenced)
            amount = records.decimal(record, "amount")
            last = await BalanceTransaction.filter(organization_id=org_id).order_by("-seq").first()
            await BalanceTransaction.create(
                organization_id=org_id, seq=(last.seq + 1) if last else 1, kind=TransactionKind.TOP_UP, amount=amount,
                balance_after=(last.balance_after if last else Decimal(0)) + amount, description="Пополнение",
                occurred_at=dt.datetime.now(dt.timezone.utc), external_id=record.external_id,
            )
            actor.touched(org_id, Area.BALANCE)
            return records.Outcome.CREATED

        return await records.each_record("test_top_up", batch, one)

    yield "test_top_up"
    records.ENTITIES.pop("test_top_up", None)


async def test_each_role_follows_the_providers_change_through_its_own_rules(gql, app, live_server, top_up_entity):
    org, users = await factories.create_team(factories.Role.OWNER, factories.Role.ACCOUNTANT, factories.Role.USER)
    await org.__class__.filter(id=org.id).update(external_id="1C-ORG-1")
    org_gid = to_global_id("Organization", org.id)
    sockets = {}
    try:
        for role in (factories.Role.OWNER, factories.Role.ACCOUNTANT, factories.Role.USER):
            socket = GraphQLSocket(live_server, TRANSPORT_WS)
            token = await gql.token_for_password(users[role].email, factories.PASSWORD)
            assert (await socket.connect(token))["type"] == "connection_ack"
            await socket.subscribe(DATA_SUBSCRIPTION, {"org": org_gid})
            sockets[role] = socket

        # No first message tells that a subscription is live: wait until the hub follows all three.
        hub = app.state.event_hub
        for _ in range(200):
            if org.id in hub.feeds and len(hub.feeds[org.id].subscribers) >= 3:
                break
            await asyncio.sleep(0.05)
        actor = ProviderActor("SERVICE", "1С:Бухгалтерия", frozenset(SCOPES))
        results = await records.apply(
            actor, top_up_entity,
            [Record(1, {"external_id": "T-1", "organization": "1C-ORG-1", "amount": "1500.00"}),
             Record(2, {"external_id": "T-2", "organization": "1C-ORG-1", "amount": "250,50"})],
            broadcast=app.state.broadcast,
        )
        assert [r.outcome for r in results] == [records.Outcome.CREATED, records.Outcome.CREATED]

        owner = await sockets[factories.Role.OWNER].next_data()
        assert owner["data"]["organizationData"]["areas"] == ["BALANCE"]
        assert Decimal(owner["data"]["organizationData"]["organization"]["balance"]["amount"]) == Decimal("1750.50")
        accountant = await sockets[factories.Role.ACCOUNTANT].next_data()
        assert Decimal(accountant["data"]["organizationData"]["organization"]["balance"]["amount"]) == Decimal("1750.50")
        user = await sockets[factories.Role.USER].next_data()  # told that something changed, not the balance
        assert user["data"]["organizationData"]["organization"]["balance"] is None
        assert [e["extensions"]["code"] for e in user["errors"]] == ["FORBIDDEN"]

        # One message per batch: the next one is the next batch's, not the second record's.
        await records.apply(
            actor, top_up_entity, [Record(1, {"external_id": "T-3", "organization": "1C-ORG-1", "amount": "1"})],
            broadcast=app.state.broadcast,
        )
        following = await sockets[factories.Role.OWNER].next_data()
        assert Decimal(following["data"]["organizationData"]["organization"]["balance"]["amount"]) == Decimal("1751.50")
    finally:
        for socket in sockets.values():
            await socket.close()


async def test_a_batch_that_changed_nothing_records_no_event(top_up_entity):
    org = await factories.create_organization()
    actor = ProviderActor("CLI", "test", frozenset(SCOPES))
    results = await records.apply(actor, top_up_entity, [Record(7, {"organization": "nope", "amount": "1"})])
    assert (results[0].line, results[0].outcome, results[0].field) == (7, records.Outcome.REFUSED, "external_id")
    from models.events import OrganizationEvent

    assert await OrganizationEvent.filter(organization_id=org.id).count() == 0


async def test_a_token_without_the_scope_is_refused_the_whole_batch(top_up_entity):
    actor = ProviderActor("SERVICE", "catalog only", frozenset({"catalog:write"}))
    with pytest.raises(records.EntityRefused, match="billing:write"):
        await records.apply(actor, top_up_entity, [Record(1, {"external_id": "x"})])
    with pytest.raises(records.EntityRefused, match="Unknown entity"):
        await records.apply(actor, "no_such_entity", [])
