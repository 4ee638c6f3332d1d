"""adapters/caldav."""
