"""Thin adapters from Kafka and HTTP to the metrics handlers."""
