"""
hipaacheck: a read-only auditor of the HIPAA Security Rule's technical safeguards.
"""

__version__ = "0.1.0"
