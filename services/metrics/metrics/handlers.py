"""Use cases of the metrics service: load through ports, apply the domain rules, save, return events."""
