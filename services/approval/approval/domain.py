"""Pure rules of the approval service: no I/O, no clock reads (time comes in as an argument)."""
