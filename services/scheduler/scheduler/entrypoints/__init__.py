"""Thin adapters from Kafka and HTTP to the scheduler handlers."""
