"""The provider's side: its programs and staff writing the data customers read.

`records.py` is the one way in for the provider's data, whatever the door (the provider HTTP API,
`kabinet import`): a record per line, each upserted by the provider's own external id, each
answered with what happened to it. One module per group of entities registers its upserts there
(catalog.py, cloud.py, ledger.py, billing.py), made of the engine in upserts.py and the readers in
fields.py; imports.py reads files for `kabinet import`, document_files.py a document's PDF.
"""

from resolvers.provider import billing, catalog, cloud, ledger, managers  # noqa: F401,E402 (registers their entities)
