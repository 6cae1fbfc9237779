"""Pure rules of the publisher service: no I/O, no clock reads (time comes in as an argument)."""
