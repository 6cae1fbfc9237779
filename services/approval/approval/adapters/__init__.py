"""Adapters of the approval service: MongoDB repositories and the system clock."""
