"""Tests of the metrics service."""
