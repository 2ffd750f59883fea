"""What queries, mutations and subscriptions do, one module per domain; they speak in models."""
