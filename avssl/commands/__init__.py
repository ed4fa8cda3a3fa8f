"""Sub-commands of the `avssl` command line (see avssl/cli.py)."""
