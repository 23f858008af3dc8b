"""Bulk Customer Import: `python main.py` opens the app; `python main.py import|sandbox ...`."""

import multiprocessing
import sys

if __name__ == "__main__":
    from app.console_streams import ensure_standard_streams

    # a Windows app without a console has no stdout/stderr: log them to a file instead
    ensure_standard_streams()
    # large imports read and write in helper processes; in a packaged app the helper starts
    # as another copy of the executable, and this turns it into the helper. It comes before
    # the app's import so that a helper does not load the whole command line first.
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
