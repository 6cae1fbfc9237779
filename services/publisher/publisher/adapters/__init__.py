"""Adapters of the publisher: MongoDB (ledger, rate windows), the clock and the event sink, media downloads."""
