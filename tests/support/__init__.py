"""Test support: the one Kafka broker fixture and helpers shared by the suites."""
