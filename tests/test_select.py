"""`models/select.py` answers what the same QuerySet answers: the same rows in the same order, for
every kind of condition it compiles, on the database under test, and for the others (which a
QuerySet renders)."""

from __future__ import annotations

import datetime as dt

import pytest
from tortoise.expressions import Q

from models.billing import Document, PrepaidService
from models.cloud import Session, SessionStatus
from models.organizations import Membership, Organization, Role
from models.select import (
    Unsupported, _Statement, count, count_per_parent, select, select_counted, select_first_per_parent,
    select_first_per_parent_counted,
)

CONDITIONS = [
    None,
    Q(status=SessionStatus.ACTIVE),
    Q(status="ACTIVE"),
    Q(status__in=[SessionStatus.ACTIVE, SessionStatus.ENDED]),
    Q(status__in=[]),
    Q(ended_at=None),
    Q(ended_at__isnull=False),
    Q(started_at__gte=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)),
    Q(started_at__lt=dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)) & Q(status=SessionStatus.ENDED),
    Q(status=SessionStatus.ACTIVE) | Q(ended_at__isnull=False),
    ~Q(status=SessionStatus.ACTIVE),
    Q(Q(status=SessionStatus.ACTIVE), Q(user_name__gt="М"), join_type="OR"),
]


def _ids(rows) -> list:
    return [row.id for row in rows]


@pytest.mark.parametrize("condition", CONDITIONS, ids=[f"condition-{n}" for n in range(len(CONDITIONS))])
async def test_rows_and_counts_match_the_queryset(app, condition) -> None:
    _Statement(Session).where(condition)  # written by this module, not handed to a QuerySet
    queryset = Session.all() if condition is None else Session.filter(condition)
    expected = await queryset.order_by("-started_at", "-id")
    assert _ids(await select(Session, condition, [("started_at", True), ("id", True)])) == _ids(expected)
    assert _ids(await select(Session, condition, [("started_at", True), ("id", True)], limit=3)) == _ids(expected[:3])
    assert await count(Session, condition) == len(expected)
    rows, total = await select_counted(Session, condition, [("started_at", True), ("id", True)], 2)
    assert (_ids(rows), total) == (_ids(expected[:2]), len(expected))


async def test_models_are_whole_and_typed(app) -> None:
    (ours,) = await select(Membership, Q(role=Role.OWNER), [("created_at", False), ("id", False)], limit=1)
    theirs = await Membership.get(id=ours.id)
    assert ours.role is Role.OWNER and ours.__dict__ == {k: v for k, v in theirs.__dict__.items() if k in ours.__dict__}


async def test_first_rows_and_counts_per_parent(app) -> None:
    organizations = [o.id for o in await Organization.all()]
    where = Q(organization_id__in=organizations, visible_from__lte=dt.date.today())
    order = [("issued_on", True), ("number", False), ("id", False)]
    rows = await select_first_per_parent(Document, "organization_id", where, order, 2)
    expected = []
    for org in sorted(organizations, key=str):
        expected += [d.id for d in await Document.filter(where, organization_id=org).order_by("-issued_on", "number", "id").limit(2)]
    assert sorted(map(str, _ids(rows))) == sorted(map(str, expected)) and rows
    totals = await count_per_parent(Document, "organization_id", where)
    for org in organizations:
        assert totals.get(org, 0) == await Document.filter(where, organization_id=org).count()
    counted_rows, counted_totals = await select_first_per_parent_counted(Document, "organization_id", where, order, 2)
    assert _ids(counted_rows) == _ids(rows) and counted_totals == totals


async def test_values_are_parameters_not_sql(app) -> None:
    hostile = "x' OR '1'='1"
    assert await select(PrepaidService, Q(name=hostile)) == []
    assert await count(PrepaidService, Q(name__in=[hostile, "'; DROP TABLE prepaid_service; --"])) == 0


async def test_what_it_does_not_compile_a_queryset_renders(app) -> None:
    starts = Q(user_name__startswith="И")
    with pytest.raises(Unsupported):
        _Statement(Session).where(starts)
    assert _ids(await select(Session, starts, [("id", False)])) == _ids(await Session.filter(starts).order_by("id"))
    assert await count(Session, starts) == await Session.filter(starts).count()
    joined = Q(user__email="owner@romashka.example")
    assert _ids(await select(Membership, joined)) == _ids(await Membership.filter(joined))
    organizations = [o.id for o in await Organization.all()]
    where = Q(organization_id__in=organizations) & starts
    rows = await select_first_per_parent(Session, "organization_id", where, [("id", False)], 1)
    assert {r.organization_id for r in rows} == {s.organization_id for s in await Session.filter(where)}
    assert sum((await count_per_parent(Session, "organization_id", where)).values()) == await Session.filter(where).count()
    _, totals = await select_first_per_parent_counted(Session, "organization_id", where, [("id", False)], 1)
    assert totals == await count_per_parent(Session, "organization_id", where)
    counted_rows, total = await select_counted(Session, starts, [("id", False)], 1)
    assert total == await Session.filter(starts).count() and len(counted_rows) == min(1, total)


async def test_rows_read_in_a_block_are_not_read_again_by_id(app) -> None:
    from kabinet.db import count_sql
    from models.cloud import Database
    from models.select import read_only, select_by_ids

    databases = await select(Database, None, [("name", False), ("id", False)], limit=3)
    ids = [d.id for d in databases]
    with count_sql() as outside:
        assert set(await select_by_ids(Database, ids)) == set(ids)
    with read_only():
        await select(Database, Q(id__in=ids[:2]))
        with count_sql() as inside:
            rows = await select_by_ids(Database, [*ids, None])
        assert set(rows) == set(ids) and all(rows[i].id == i for i in ids)
        with count_sql() as again:
            await select_by_ids(Database, ids)
    assert len(outside.statements) == 1
    assert len(inside.statements) == 1 and "IN" in inside.statements[0]  # only the one not yet read
    assert again.statements == []
