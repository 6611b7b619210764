"""trainforge."""
