"""adapters/ics."""
