"""trainforge acting as a client of AWS services other than S3: one module per service, each the
only place that builds that service's boto3 client (ECR for image pulls)."""
