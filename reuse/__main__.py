"""`python -m reuse` runs the command line."""

from reuse.cli import main

if __name__ == "__main__":
    main()
