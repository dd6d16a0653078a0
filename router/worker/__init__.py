"""Stream worker: consumes events, routes contacts, writes decisions."""
