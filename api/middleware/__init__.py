"""What wraps every request: the request log and id, CORS, the API key and Prometheus metrics."""
