"""
Report templates, installed as `hipaacheck.reports`. Presentation only: no logic lives here.
"""
