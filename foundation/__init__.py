"""The floor under every layer: the clock, the settings, global ids and the byte-budgeted cache.

It imports nothing of kabinet; everything else may import it."""
