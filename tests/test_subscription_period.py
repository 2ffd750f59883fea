"""One writer of a cloud subscription's period: no module but resolvers/cloud/subscriptions.py sets
`starts_on`/`ends_on` (`open_subscription`, `set_period`).

The provider's records set it, and `roll_over` moves it on once passed; the extension offered once
per period reads it. A second writer would be a second idea of what a period is. Read as Python (ast),
through tests/writers.py as the lifecycle tests do; the provider's generic `save_changes` (setattr)
is seen by the values it is handed: a dict naming the period beside the model."""

from __future__ import annotations

from pathlib import Path

from tests.writers import ROOT, Owned, writers

OWNER = Path("resolvers/cloud/subscriptions.py")
PERIOD = Owned(
    models=frozenset({"CloudSubscription"}), fields=frozenset({"starts_on", "ends_on"}),
    is_row=lambda name: "subscription" in name.lower(), creates_any=False, saves_any=False,
    table="cloud_subscription", keyed=True,
)


def test_only_resolvers_cloud_subscriptions_writes_a_period():
    offenders = [f"{module}:{where}" for module, found in writers(PERIOD, OWNER).items() for where in found]
    assert not offenders, (
        "a cloud subscription's period is written outside resolvers/cloud/subscriptions.py; call its "
        "open_subscription / set_period instead:\n" + "\n".join(offenders)
    )


def test_the_owner_itself_is_seen_writing():
    """The scan finds what it looks for: the owner's own writes, and each kind of write."""
    assert PERIOD.writes((ROOT / OWNER).read_text(encoding="utf-8")), "the scan sees nothing in the owner"
    samples = {
        "await CloudSubscription.create(organization=o, starts_on=a, ends_on=b)": 1,
        "await CloudSubscription.create(organization_id=o, **values)": 1,
        "await CloudSubscription.bulk_create(rows)": 1,
        "await CloudSubscription.filter(id=x).update(ends_on=d)": 1,
        "subscription.starts_on, subscription.ends_on = a, b": 2,
        "await subscription.save(update_fields=['starts_on', 'ends_on'])": 1,
        "await subscription.save()": 1,
        "setattr(subscription, 'ends_on', d)": 1,
        "async def f():\n    rows = await CloudSubscription.filter()\n    await save_changes(rows[0], {'ends_on': d})": 1,
        "await db.execute_query('UPDATE cloud_subscription SET ends_on = $1')": 1,
        # Not writes: reading, other fields, other models' periods.
        "await CloudSubscription.filter(ends_on__lt=today).count()": 0,
        "await CloudSubscription.filter(id=x).update(sessions_limit=3)": 0,
        "await subscription.save(update_fields=['tariff'])": 0,
        "contract.starts_on = day": 0,
        "await Contract.create(starts_on=a, ends_on=b)": 0,
        "async def g():\n    await save_changes(contract, {'ends_on': d})": 0,
        "if subscription.ends_on < today: pass": 0,
    }
    for source, expected in samples.items():
        assert len(PERIOD.writes(source)) == expected, source


def test_the_scan_saw_the_provider_write_a_period_itself():
    """The provider's upsert as it was (values with the period handed to save_changes and create) is caught."""
    before = (
        "async def upsert(actor, records):\n"
        "    rows = await CloudSubscription.filter(external_id__in=ids)\n"
        "    values = {'tariff': t, 'starts_on': date(record, 'starts_on'), 'ends_on': date(record, 'ends_on')}\n"
        "    outcome = await save_changes(row, values)\n"
        "    row = await CloudSubscription.create(organization_id=o, external_id=e, **values)\n"
    )
    assert len(PERIOD.writes(before)) == 2
