"""trainforge acting as a client of AWS services other than S3: STS (the role's credentials for
a job's containers) and ECR (the logins of image pulls). Each service stays behind one module
here, the only ones besides storage/s3.py and the CLI's server client that import boto3. Nothing
here knows jobs, containers or the store."""
