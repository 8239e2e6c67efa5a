"""Billing: prices from routing.yaml's rules, per-key balances and the ledger (design.md §6)."""
