"""The role table (resolvers/common/permissions.py) covers the served schema: every object type that carries a
row has a rule, every field rule and personal field names a real field, and docs/security.md's
"Who sees what" lists every ruled type. A new type without a rule fails here, not in production."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from graphql import GraphQLObjectType
from tortoise import Tortoise
from tortoise.expressions import Q

from models.cloud import ClientKind, Session, SessionStatus
from models.organizations import DatabaseGrant, Membership, Role
from models.updates import UpdateRun, UpdateRunStatus
from resolvers.common.context import RequestContext, Viewer
from resolvers.common.permissions import FIELD_RULES, PERSONAL_FIELDS, TYPE_RULES, InOrganization, Sight, scope
from foundation.settings import Settings
from schema.build import build_schema
from tests import factories

SECURITY = Path(__file__).resolve().parent.parent / "docs" / "security.md"


def _object_types() -> dict[str, GraphQLObjectType]:
    graphql_schema = build_schema(Settings(_env_file=None))._schema
    return {
        name: t for name, t in graphql_schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    }


def _carries_a_row(gtype: GraphQLObjectType) -> bool:
    definition = gtype.extensions.get("strawberry-definition")
    origin = getattr(definition, "origin", None)
    return origin is not None and "model" in getattr(origin, "__annotations__", {})


def test_every_type_that_carries_a_row_has_a_rule():
    missing = [name for name, t in _object_types().items() if _carries_a_row(t) and name not in TYPE_RULES]
    assert missing == [], f"types without a rule in resolvers.common.permissions.TYPE_RULES: {missing}"


def test_every_node_type_has_a_rule():
    missing = [name for name, t in _object_types().items() if any(i.name == "Node" for i in t.interfaces) and name not in TYPE_RULES]
    assert missing == []


def test_field_rules_and_personal_fields_name_real_fields():
    types = _object_types()
    for type_name, field_name in [*FIELD_RULES, *PERSONAL_FIELDS]:
        assert type_name in types and field_name in types[type_name].fields, (type_name, field_name)


def test_the_security_page_lists_every_ruled_type():
    text = SECURITY.read_text(encoding="utf-8")
    section = text[text.index("## Who sees what"):text.index("## The provider's binding rule")]
    missing = [name for name in TYPE_RULES if f"`{name}`" not in section]
    assert missing == [], f"docs/security.md's \"Who sees what\" does not list {missing}"


def test_the_node_registry_is_read_off_the_schema():
    """`node(id:)` knows exactly the schema's Node types, each with its model and conversion: a new
    Node type needs no list of its own to be fetchable by id."""
    from tortoise.models import Model

    from schema.nodes import node_types

    graphql_schema = build_schema(Settings(_env_file=None))._schema
    registry = node_types(graphql_schema)
    implementers = {name for name, t in _object_types().items() if any(i.name == "Node" for i in t.interfaces)}
    assert set(registry) == implementers and len(implementers) >= 16
    for name, node_type in registry.items():
        assert issubclass(node_type.model, Model) and callable(node_type.convert), name
        assert name in TYPE_RULES, name


# ---------------------------------------------------------------- the rules as query filters

ORGANIZATION_RULES = sorted(name for name, rule in TYPE_RULES.items() if isinstance(rule, InOrganization))


def test_the_cloud_rules_answer_as_query_filters_too():
    """Lists of databases, update runs and sessions are narrowed in SQL by the very rules the gate applies."""
    assert {"Database", "UpdateRun", "Session"} <= set(ORGANIZATION_RULES)


async def _cloud_rows(organization, users: dict[Role, object]) -> None:
    """Two databases (the USER granted one), everyone's sessions in both, a run in each."""
    first = await factories.create_database(organization, name="Первая")
    second = await factories.create_database(organization, name="Вторая")
    user_membership = await Membership.get(organization_id=organization.id, user_id=users[Role.USER].id)
    await DatabaseGrant.create(membership=user_membership, database=first)
    for database in (first, second):
        for person in (*users.values(), None):
            await factories.create_session(database, user=person)
        await UpdateRun.create(
            organization=organization, database=database, status=UpdateRunStatus.CANCELLED,
            scheduled_for=dt.datetime.now(dt.timezone.utc),
        )
    await Session.create(  # a session in no database
        organization=organization, database=None, user=users[Role.USER], user_name="Без базы",
        client_kind=ClientKind.RDP, host=None, started_at=dt.datetime.now(dt.timezone.utc), status=SessionStatus.ENDED,
    )


@pytest.mark.parametrize("type_name", ORGANIZATION_RULES)
async def test_a_rule_and_its_query_filter_admit_the_same_rows(app, settings, type_name):
    """For every role (and a stranger), in the viewer's organization and another: the rows the row
    rule lets one SEE are exactly the rows its query filter (`scope`) matches, and a refusal of the
    whole list (FORBIDDEN, HIDDEN) is what the row rule answers for each row."""
    roles = (Role.OWNER, Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    organization, users = await factories.create_team(*roles)
    other, other_users = await factories.create_team(*roles)
    await _cloud_rows(organization, users)
    await _cloud_rows(other, other_users)
    stranger = await factories.create_user()
    rule = TYPE_RULES[type_name]
    model = Tortoise.apps["models"][type_name]
    for viewer in (*users.values(), stranger):
        ctx = RequestContext(settings, Viewer(viewer.id, viewer.id))
        await ctx.memberships()
        for organization_id in (organization.id, other.id):
            in_organization = Q(**{rule.organization: organization_id})
            rows = await model.filter(in_organization)
            admitted = {row.id for row in rows if rule(ctx, row) is Sight.SEE}
            seen = scope(type_name, ctx, organization_id)
            if seen.sight is Sight.SEE:
                query = in_organization if seen.narrowing is None else in_organization & seen.narrowing
                matched = set(await model.filter(query).values_list("id", flat=True))
            else:
                matched = set()
                assert {rule(ctx, row) for row in rows} <= {seen.sight}, (type_name, viewer, organization_id)
            assert admitted == matched, (type_name, ctx.role_in(organization_id))


# ---------------------------------------------------------------- the staff desk's types


def _staff_desk_types() -> list[str]:
    """The object types the staff desk answers with (schema/staff_desk.py's, payloads aside) and the
    moderation queue's: each one the provider's staff alone may see."""
    found = {"ModeratedOrganization", "Claimant"}
    for name, gtype in _object_types().items():
        origin = getattr(gtype.extensions.get("strawberry-definition"), "origin", None)
        if getattr(origin, "__module__", None) == "schema.staff_desk" and not name.endswith("Payload") and not name.endswith("Mutations") and not name.endswith("Queries"):
            found.add(name)
    return sorted(found)


def test_every_staff_desk_type_carries_its_row_and_is_staff_only():
    """A staff-desk type without a row slipped past the gate (no rule asked: Claimant, WaitingDocuments
    before issue 18); each carries one now, and its rule is staff only."""
    from resolvers.common.permissions import NEEDS_STAFF_FLAG, _staff_only

    types = _object_types()
    names = _staff_desk_types()
    assert {"DeliveryFailure", "RefusedRecord", "WaitingDocuments", "StaffInvitation", "Claimant"} <= set(names)
    for name in names:
        assert _carries_a_row(types[name]), f"{name} carries no row: the gate cannot rule it"
        assert TYPE_RULES.get(name) is _staff_only, name
        assert name in NEEDS_STAFF_FLAG, name


@pytest.mark.parametrize("type_name", _staff_desk_types())
async def test_a_staff_desk_type_is_hidden_from_an_owner_and_seen_by_staff(app, settings, type_name):
    from models.identity import User

    _, team = await factories.create_team()
    staff_user = await factories.create_user(factories.unique_email("staff"))
    await User.filter(id=staff_user.id).update(is_staff=True)
    for viewer, sight in ((team[Role.OWNER], Sight.HIDDEN), (staff_user, Sight.SEE)):
        ctx = RequestContext(settings, Viewer(viewer.id, viewer.id))
        await ctx.memberships()
        await ctx.prepare_staff_flag()
        assert TYPE_RULES[type_name](ctx, object()) is sight, (type_name, viewer.email)
