"""Thin adapters from Kafka to the publisher handlers."""
