"""Built-in postgres checks."""
