"""Built-in aws checks."""
