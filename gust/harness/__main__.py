"""``python -m gust.harness DAG_FILE [options]``: run a DAG locally as Gust would."""

import sys

from gust.harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
