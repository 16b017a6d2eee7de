"""Imports gust but defines no Dag class: not a Gust file."""

from gust import log, task


class Plain:
    @task
    def looks_like_a_task(self, ctx):
        log("not in a Dag")


def helper():
    return 1
