"""A helper beside the DAGs: not a DAG file (no Dag class), imported by one.

Gust runs tasks with the DAGs folder as working directory, so `import orders` works under Gust,
under the harness and in the tests (pytest's `pythonpath = ["dags"]`).
"""

from decimal import Decimal

#: Today's orders: (currency, amount).
ORDERS = [("EUR", Decimal("100")), ("GBP", Decimal("20"))]


def fetch_rates(url: str, key: str) -> dict[str, Decimal]:
    """Exchange rates to USD (a stand-in for a call to a rates service at ``url``)."""
    if not key:
        raise ValueError("no API key")
    return {"EUR": Decimal("1.0834"), "GBP": Decimal("1.2650")}
