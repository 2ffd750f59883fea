"""The benchmark of kabinet against PostGraphile: `make bench` (see bench/README.md)."""
