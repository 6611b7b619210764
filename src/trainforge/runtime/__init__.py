"""One job from workspace to outcome, and the /opt/ml contract. Reports phases and log lines
to its caller; never writes a status, never imports the service or the store."""
