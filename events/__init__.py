"""Events, one package: the domain's numbered event log (log.py), the broker carrying their numbers
between processes (broker.py: in-process, Redis, PostgreSQL; broadcaster_internals.py its adapter) and
the hub feeding each process's subscribers in order (hub.py). Below the domain, above the models."""
