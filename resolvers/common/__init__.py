"""What every room of the domain shares: the viewer and actor (context.py), the role table
(permissions.py), refusals (errors.py), lookups and gates (gates.py), paging, input checks, the unit of
work, the audit log, the outbox, retention, and who holds the provider staff's rights."""
