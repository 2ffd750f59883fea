"""Tortoise models, one module per domain. Ids are UUIDs, money is Decimal, times are UTC."""

MODEL_MODULES = [
    "models.identity",
    "models.versions",
    "models.organizations",
    "models.products",
    "models.billing",
    "models.cloud",
    "models.updates",
    "models.audit",
    "models.outbox",
    "models.events",
    "models.provider",
    "models.program_tokens",
    "models.notifications",
    "models.requisites",
    "models.tickets",
]

# Model docstrings become SQL table comments: Tortoise's SQLite migrator splits statements on
# ";", so a docstring must not contain one.
