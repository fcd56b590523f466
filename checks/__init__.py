"""
The built-in checks, installed as `hipaacheck.checks` and registered through the
`hipaacheck.checks` entry-point group, exactly as a third-party package would register its own.
"""
