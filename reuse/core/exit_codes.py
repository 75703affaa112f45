"""Exit codes of the `reuse` command, named in one place."""

SUCCESS = 0
ERROR = 1  # the command could not do what was asked: bad input, mismatch, failure
USAGE = 2  # bad command line (the code Typer/Click use)
CHECK_FAILED = 3  # `reuse check` ran, and at least one check failed
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
