"""``python -m medgap``: the same as the ``medgap`` command."""

from medgap.cli import main

if __name__ == "__main__":
    main()
