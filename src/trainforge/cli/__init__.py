"""The ``trainforge`` command line. Nothing imports this package."""
