"""Pure rules of the scheduler service: no I/O, no clock reads (time comes in as an argument)."""
