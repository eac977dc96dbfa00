"""``python -m nclib``: see :mod:`nclib.cli`."""

from nclib.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
