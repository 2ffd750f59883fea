"""Cloud databases and their sessions: lists (reads.py), a session's lifecycle, live lists, the
clusters and their agents, database locks, the cloud subscription and its extension."""
