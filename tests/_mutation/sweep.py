"""Every mutant of one module against that module's own tests, in one pytest process.

    uv run python tests/_mutation/sweep.py gust/values.py tests/test_values.py [-k EXPR]

``mutmut run`` maps each function to every test that runs it, which for gust means most of the
suite through subprocesses: thorough, and hours on two cores. A sweep asks a narrower question
fast: do a module's own tests kill its mutants? It needs the mutants mutmut generated
(``mutants/``, made by the first seconds of ``mutmut run``), runs the given tests once on the
original code, then for each mutant until the first test fails (a test that hangs fails by
its pytest-timeout, so a mutant that hangs counts as killed, as in mutmut). Subprocesses the tests
start import the mutated package too (tests/conftest.py). The survivors are printed and the
result is added to ``mutants/sweep/<module>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MUTANTS = REPO / "mutants"


class SweepPlugin:
    """Runs the session's tests once per mutant instead of once (``pytest_runtestloop``)."""

    def __init__(self, names: list[str], out: Path) -> None:
        self.names, self.out = names, out

    def _first_failure(self, session: Any) -> str | None:
        from _pytest.runner import runtestprotocol

        for item in session.items:
            reports = runtestprotocol(item, nextitem=None, log=False)
            if any(r.failed for r in reports):
                return item.nodeid
        return None

    def _judge(self, session: Any, name: str) -> str | None:
        os.environ["MUTANT_UNDER_TEST"] = name
        try:
            return self._first_failure(session)
        finally:
            os.environ["MUTANT_UNDER_TEST"] = ""

    def pytest_runtestloop(self, session: Any) -> bool:
        baseline = self._judge(session, "")
        if baseline is not None:
            raise SystemExit(f"the tests fail without any mutant: {baseline}")
        results: dict[str, str | None] = {}
        for name in self.names:
            started = time.monotonic()
            results[name] = killer = self._judge(session, name)
            took = time.monotonic() - started
            print(f"{'killed  ' if killer else 'SURVIVED'} {name} {killer or ''} {took:.1f}s")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.out.exists():  # earlier sweeps of other mutants of the module stay
            results = {**json.loads(self.out.read_text(encoding="utf-8")), **results}
        self.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
        return True


def mutant_names(module_path: str) -> list[str]:
    """The mutants mutmut generated for ``module_path`` (``gust/values.py``), by name."""
    source = (MUTANTS / module_path).read_text(encoding="utf-8")
    module = module_path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    return [f"{module}.{m}" for m in re.findall(r"^\s*def (x\S*?__mutmut_\d+)\(", source, re.M)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="the module's path, e.g. gust/values.py")
    parser.add_argument("tests", nargs="+", help="its test files, e.g. tests/test_values.py")
    parser.add_argument("-k", default=None, help="pytest -k expression to leave slow tests out")
    parser.add_argument(
        "--only", action="append", default=[], help="only the mutants matching this glob"
    )
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (MUTANTS / args.module).exists():
        print(f"no {MUTANTS / args.module}: run `mutmut run` first", file=sys.stderr)
        return 1
    suffix = ".only" if args.only else ""
    out = MUTANTS / "sweep" / (args.module.replace("/", ".") + suffix + ".json")
    pytest_args = ["-q", "-n0", "-p", "no:cacheprovider", "-p", "no:randomly", *args.tests]
    if args.k:
        pytest_args += ["-k", args.k]
    if not args.inside:  # start over inside mutants/, with the mutated package first on the path
        env = {**os.environ, "PYTHONPATH": str(MUTANTS), "MUTANT_UNDER_TEST": ""}
        return subprocess.call(
            [sys.executable, __file__, "--inside", *(argv if argv is not None else sys.argv[1:])],
            cwd=MUTANTS,
            env=env,
        )
    import pytest

    wanted = args.only or ["*"]
    names = [n for n in mutant_names(args.module) if any(fnmatch(n, p) for p in wanted)]
    plugin = SweepPlugin(names, out)
    code = pytest.main(pytest_args, plugins=[plugin])
    everything = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    results = {name: everything[name] for name in names if name in everything}
    survivors = [name for name, killer in results.items() if not killer]
    print(f"{args.module}: {len(results) - len(survivors)} killed of {len(results)}")
    return int(code) or (2 if survivors else 0)


if __name__ == "__main__":
    sys.exit(main())
