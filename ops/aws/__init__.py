"""AWS resources with boto3, one module per concern: desired / actual / plan / apply."""
