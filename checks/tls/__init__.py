"""Built-in tls checks."""
