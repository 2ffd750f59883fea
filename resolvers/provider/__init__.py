"""The provider's side: its programs and staff writing the data customers read.

`records.py` is the one way in for the provider's data, whatever the door (the provider HTTP API,
`kabinet import`): a record per line, each upserted by the provider's own external id, each
answered with what happened to it. One module per group of entities registers its upserts there.
"""

from resolvers.provider import billing, catalog, cloud, managers  # noqa: F401,E402 (registers their entities)
