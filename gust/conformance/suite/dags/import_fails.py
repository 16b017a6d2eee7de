"""Conformance DAG: a file that parses (statically) but fails when imported."""

from gust import Dag, task


class ImportFails(Dag):
    @task
    def never_runs(self, ctx):
        """Never reached: importing the file fails first."""
        return None


raise RuntimeError("this DAG cannot be imported")
