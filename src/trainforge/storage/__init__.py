"""Where data is read and written: S3 (any S3-compatible endpoint) and local paths, behind one
small interface. Only ``storage.s3`` builds a boto3 S3 client."""
