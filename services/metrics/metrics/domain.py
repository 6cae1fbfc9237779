"""Pure rules of the metrics service: no I/O, no clock reads (time comes in as an argument)."""
