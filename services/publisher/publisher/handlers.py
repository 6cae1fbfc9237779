"""Use cases of the publisher service: load through ports, apply the domain rules, save, return events."""
