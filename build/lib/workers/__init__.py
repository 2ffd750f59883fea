"""Background work: session cluster, update runs, document publishing, mail."""
