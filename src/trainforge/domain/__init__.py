"""The domain: what a training job is, independent of any layer. Records, status enums and the
transition rules, the names of SageMaker's container contract (paths, ARNs, the output layout),
the hosts of a request and the resources allocated to them. Pure: imports nothing else of
trainforge, so the service, the store, the scheduler and the runtime all build on it."""
