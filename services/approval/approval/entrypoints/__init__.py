"""Thin adapters from Kafka and HTTP to the approval handlers."""
