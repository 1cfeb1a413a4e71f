"""Benchmarks of requests-falcon-auth beside the libraries users would otherwise pick.

Not part of the test suite: timing claims live here, as counts and ratios from one run, never
as timed asserts in tests. Every peer runs against the embedded Falcon emulator (in a process
of its own, on loopback) in the same run::

    pip install -e '.[redis,httpx]' -r benchmarks/requirements.txt
    python -m benchmarks            # about 2 minutes; writes benchmarks/results.md
    python -m benchmarks --quick    # about a minute; fewer rounds, lifetimes and calls

``python benchmarks/emulator_throughput.py`` measures the emulator alone.
"""
