"""The dashboard: web pages under ``/ui`` that show training jobs, their logs and metrics, and
stop them. It reads and acts only through the API's dispatcher (the same handlers, the same
validation), never through the store; ``server.web`` mounts it beside the AWS endpoint."""
