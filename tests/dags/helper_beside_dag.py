"""A module beside a DAG file: importable from it (SPEC §5)."""

HELPER_VALUE = "from beside"
