"""A module beside a DAG file: importable from it."""

HELPER_VALUE = "from beside"
