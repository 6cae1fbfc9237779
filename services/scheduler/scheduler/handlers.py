"""Use cases of the scheduler service: load through ports, apply the domain rules, save, return events."""
