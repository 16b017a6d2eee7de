"""The conformance suite's runner: checks any runtime or any host against the golden cases.

Theory of operation: the cases are package data under ``suite/`` (JSON Schema for every message
and for the case format, byte vectors for the codec, one JSON transcript per case, the DAG files
they run); ``conformance/`` at the top of a checkout links to the same files. ``python -m
gust.conformance runtime`` plays the host against a runtime command; ``python -m
gust.conformance host`` gives a host under test a scripted child that replays a case. Each
module does one job: :mod:`.cli` is the click command line, :mod:`.resources` finds the suite,
:mod:`.cases` loads and checks case files, :mod:`.matchers` compares frames, :mod:`.schema`
validates frames against the schemas (``jsonschema``, the ``conformance`` extra), :mod:`.wire`
cuts byte streams into frames for reports, :mod:`.procwatch` tells whether a process still runs,
:mod:`.runtime_mode` and :mod:`.host_mode` drive the two sides (the latter through
:mod:`.scripted_child`, the program a host runs instead of ``gust``) with the project's process
helper (:mod:`gust._process`) and, in runtime mode, the harness's exchange machine,
:mod:`.report` holds the verdicts, :mod:`.record` turns a recorded exchange into a case. Nothing
here is imported by ``import gust``.
"""
