"""Built-in logs checks."""
