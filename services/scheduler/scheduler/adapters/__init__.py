"""MongoDB, Kafka and clock adapters of the scheduler."""
