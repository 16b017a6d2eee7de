"""``python -m gust.conformance``: the conformance runner's command line (:mod:`.cli`)."""

from __future__ import annotations

import os
import sys

from gust.conformance.cli import EXIT_FAILED, main

if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        # The reader of our output left (``| head``): say nothing more; the verdict was not
        # told in full, so it cannot be a pass.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
