"""Contracts: the inbound events govsync accepts and the normalised records it publishes."""
