"""``python -m dasktrain``: the same as the ``dasktrain`` command."""

from dasktrain.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
