"""A reference cluster agent: carries out kabinet's update runs on a 1C cluster over kabinet's HTTP agent API.

A separate program, not part of kabinet: it talks HTTP only and imports nothing of kabinet, so a
provider can copy this folder and replace the simulated cluster (onec.py) with `rac`/`ras` and the
designer's `/UpdateCfg`. Run it with `python -m cluster_agent --url … ` (see __main__.py).
"""
