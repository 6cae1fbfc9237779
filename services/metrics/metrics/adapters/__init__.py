"""Adapters of the metrics service: MongoDB, the approval service's key check, clock and Kafka."""
