"""kabinet: the composition root — settings, database, auth, pub/sub, the app factory and the CLI."""
