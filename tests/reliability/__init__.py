"""Reliability tests of issue #7: hostile input, security, faults."""
