"""Bulk Customer Import: `python main.py` opens the app; `python main.py import|sandbox ...`."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
