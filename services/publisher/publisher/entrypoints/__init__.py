"""Thin adapters from Kafka and HTTP to the publisher handlers."""
