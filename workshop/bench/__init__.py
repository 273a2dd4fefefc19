"""``workshop bench``: how fast the model answers, in process and through the API, on each engine.

One run measures everything on the same machine and writes ``docs/benchmarks.md``:

* :mod:`workshop.bench.floor`: the raw in-process prediction, the floor the API is compared with;
* :mod:`workshop.bench.load`: a bounded HTTP load generator (loopback only) for the API;
* :mod:`workshop.bench.peer`: the default ``workshop serve`` against the original lab's naive back-end;
* :mod:`workshop.bench.coldstart`: process (and container) start to the first answered prediction;
* :mod:`workshop.bench.runner`: runs them all and writes the report (:mod:`workshop.bench.report`).

This is a benchmark, not a test: it prints figures and ratios, it asserts nothing.
"""
