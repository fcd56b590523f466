"""
Package layout for setuptools: `checks/` installs as `hipaacheck.checks` and `reports/` as
`hipaacheck.reports` (with its templates), so no top-level `checks` package reaches site-packages.
"""

from setuptools import find_packages, setup

core = find_packages(include=["hipaacheck", "hipaacheck.*"])
checks = ["hipaacheck.checks"] + [f"hipaacheck.checks.{p}" for p in find_packages("checks")]

setup(
    packages=core + checks + ["hipaacheck.reports"],
    package_dir={"hipaacheck.checks": "checks", "hipaacheck.reports": "reports"},
    package_data={
        "hipaacheck.reports": ["templates/*"],
        "hipaacheck": ["example.yaml", "py.typed"],
        "hipaacheck.lab": ["fixtures/**/*"],
    },
    include_package_data=True,
)
