"""Pulls insights for published posts into MongoDB and serves them with their freshness."""
