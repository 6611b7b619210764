"""The HTTP server (``trainforge serve``): ASGI wiring and its composition. Nothing imports this
package."""
