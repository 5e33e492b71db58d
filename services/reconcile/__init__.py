"""Reconciliation: govsync checks itself against what the portal holds and what it scores."""
