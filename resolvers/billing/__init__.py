"""Money and paper: the deposit and its ledger, charges and prepaid services (reads.py), products
and contracts, accounting documents, their publishing, and the supplier's requisites they print."""
