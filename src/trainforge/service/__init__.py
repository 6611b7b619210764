"""SageMaker semantics of the training job and CloudWatch Logs operations, over the store. No
HTTP, no Docker."""
