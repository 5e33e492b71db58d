"""Tests of what ships to a cluster: the image recipe, the Helm chart, the Prometheus rules."""
