"""The domain: what queries, mutations, subscriptions, workers and the HTTP APIs do, with no GraphQL.

One room (sub-package) per domain: common, identity, organizations, billing, cloud, updates, provider.
A room may use another's functions; every rule has one home (ARCHITECTURE.md says which)."""
