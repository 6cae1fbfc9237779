"""Owns the durable schedule of every post and emits PostDue at each post's due time."""
