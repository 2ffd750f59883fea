"""The floor under every layer: the clock, the settings, global ids, the byte-budgeted
cache and the request record every log line reads.

It imports nothing of kabinet; everything else may import it."""
