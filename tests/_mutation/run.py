"""Mutation testing of the modules where a silent bug costs most, and its score per module.

    uv run python tests/_mutation/run.py            # mutmut run, then the score
    uv run python tests/_mutation/run.py --score    # the score of the last run only

The modules and the tests that judge them are ``[tool.mutmut]`` in pyproject.toml; the run
works in ``mutants/`` (ignored by git) and picks up where it stopped. The score counts a
mutant killed when a test failed or it timed out; every other mutant is listed so that it can
be killed by a new test or explained in the README ("Test strength").

A full run takes hours on two cores, more than one sitting, and ``mutants/`` is not kept by a
fresh clone. So the verdicts are also kept in git, in ``tests/_mutation/ledger/`` (mutmut's
own per-module ``.meta`` files, which carry a hash of each function): ``--save`` copies them
there after a run, and a run starting without ``mutants/`` puts them back first. mutmut then
keeps the verdict of every function whose code has not changed and runs the rest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MUTANTS = REPO / "mutants"
LEDGER = Path(__file__).resolve().parent / "ledger"
KILLED = {"killed", "timeout", "segfault"}
#: mutmut's record of one module's verdicts, under ``mutants/`` or the ledger.
METAS = "gust/**/*.py.meta"


def status_of(code: int | None) -> str:
    """mutmut's name for a mutant's exit code (its own table, so the two never disagree)."""
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def sweep_kills(mutants: Path = MUTANTS) -> set[str]:
    """The mutants a sweep (``sweep.py``) saw a test kill."""
    kills: set[str] = set()
    for result in sorted((mutants / "sweep").glob("*.json")):
        verdicts = json.loads(result.read_text(encoding="utf-8"))
        kills.update(name for name, killer in verdicts.items() if killer)
    return kills


def read_verdicts(meta: Path, kills: set[str]) -> dict[str, Any]:
    """A module's ``.meta`` record, with the sweep ``kills`` counted where mutmut saw none:
    the sweep ran the test with the mutant, and it may be a test mutmut did not map to the
    function (one whose hits happen in a process forked inside the test, which mutmut cannot
    see)."""
    data: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
    codes = data["exit_code_by_key"]
    for name in kills & codes.keys():
        if status_of(codes[name]) not in KILLED:
            codes[name] = 1  # mutmut's code for a failing test
    return data


def save_ledger(mutants: Path = MUTANTS, ledger: Path = LEDGER) -> int:
    """Copy each module's verdicts (:func:`read_verdicts`) from ``mutants`` into ``ledger``;
    how many files."""
    kills = sweep_kills(mutants)
    metas = sorted(mutants.glob(METAS))
    for meta in metas:
        target = ledger / meta.relative_to(mutants)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = read_verdicts(meta, kills)
        target.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    return len(metas)


def restore_ledger(mutants: Path = MUTANTS, ledger: Path = LEDGER) -> int:
    """Put the ledger's verdicts into ``mutants`` where it has none; how many files."""
    restored = 0
    for saved in sorted(ledger.glob(METAS)):
        target = mutants / saved.relative_to(ledger)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, target)
            restored += 1
    return restored


def score(root: Path = MUTANTS) -> int:
    """Print the verdicts per module and every mutant not killed; the exit status: 0 when
    every mutant was run and killed, 2 when not, 1 when there are no verdicts at all."""
    metas = sorted(root.glob(METAS))
    if not metas:
        print(f"no mutation results under {root}: run without --score first", file=sys.stderr)
        return 1
    kills = sweep_kills(root)
    missed: list[tuple[str, str]] = []
    total = Counter[str]()
    print(f"{'module':<28} {'killed':>7} {'other':>6} {'not run':>8} {'total':>6}")
    for meta in metas:
        module = str(meta.relative_to(root))[: -len(".meta")]
        codes = read_verdicts(meta, kills)["exit_code_by_key"]
        statuses = {key: status_of(code) for key, code in codes.items()}
        killed = sum(s in KILLED for s in statuses.values())
        not_run = sum(code is None for code in codes.values())
        other = len(codes) - killed - not_run
        print(f"{module:<28} {killed:>7} {other:>6} {not_run:>8} {len(codes):>6}")
        total.update(killed=killed, other=other, not_run=not_run, total=len(codes))
        missed += sorted((k, s) for k, s in statuses.items() if s not in KILLED | {"not checked"})
    print(f"{'all':<28} {total['killed']:>7} {total['other']:>6} {total['not_run']:>8} "
          f"{total['total']:>6}")  # fmt: skip
    for key, status in missed:
        print(f"  {status:<12} {key}")
    return 0 if not missed and not total["not_run"] else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--score", action="store_true", help="only print the last run's (or the ledger's) score"
    )
    parser.add_argument(
        "--save", action="store_true", help="copy the verdicts into tests/_mutation/ledger/"
    )
    parser.add_argument("mutants", nargs="*", help="mutant names or globs for mutmut run")
    args = parser.parse_args(argv)
    if args.save:
        print(f"saved {save_ledger()} module(s) to {LEDGER.relative_to(REPO)}")
        return 0
    if not args.score:
        if restored := restore_ledger():
            print(f"restored {restored} module(s) of verdicts from {LEDGER.relative_to(REPO)}")
        run = subprocess.run(["mutmut", "run", *args.mutants], cwd=REPO, check=False)
        if run.returncode not in (0, 1):
            return run.returncode
        return score()
    # A fresh clone has no mutants/ yet: the score of the verdicts kept in git.
    return score(MUTANTS if any(MUTANTS.glob(METAS)) else LEDGER)


if __name__ == "__main__":
    sys.exit(main())
