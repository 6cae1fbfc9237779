"""Use cases of the approval service: load through ports, apply the domain rules, save, return events."""
