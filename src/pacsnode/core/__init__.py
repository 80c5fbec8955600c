"""The archive core: ingest, query, retrieve, delete. No network code lives here."""
