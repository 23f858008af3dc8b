"""Bulk Customer Import: `python main.py` opens the app; `python main.py import|sandbox ...`."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # large imports read and write in helper processes; a packaged Windows app needs this
    # so that those processes start as helpers rather than as another copy of the app
    multiprocessing.freeze_support()
    sys.exit(main())
