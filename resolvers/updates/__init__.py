"""Configuration updates: releases, each database's schedule, an update run's lifecycle and how a
run is carried out (by the simulated cluster or an agent)."""
