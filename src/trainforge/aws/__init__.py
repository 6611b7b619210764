"""The AWS JSON 1.1 protocol, driven by botocore's service models: routing, validation,
serialization, SigV4. Knows shapes only; never imports the service, store or runtime."""
