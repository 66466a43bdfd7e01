"""Small real servers the service tests and the benchmark talk to over loopback."""
