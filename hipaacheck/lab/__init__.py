"""
The built-in lab: real local services seeded with sound and broken configuration.
"""
