"""Organizations and their people: what a viewer sees of them (reads.py), memberships and roles,
invitations, join requests, claims by INN, the provider's moderation, members leaving."""
