"""Data files shipped with trainforge."""
