"""The local run's traffic: plans, the dialects and breakages they are sent in, and their truth."""
