"""The ``pacsnode`` command line."""
