"""How containers run: the engine contract (``base``) and the Docker Engine behind it. Only
``engines.docker`` imports docker-py."""
