"""Built-in kubernetes checks."""
