"""`python -m hipaacheck` runs the same CLI as the `hipaacheck` console script."""

from hipaacheck.cli import main

main()
