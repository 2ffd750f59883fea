"""`python -m kabinet.cli`: the `kabinet` command."""

from kabinet.cli import main

if __name__ == "__main__":
    main()
