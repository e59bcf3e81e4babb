"""Side-by-side benchmarks of the spool against the baselines the issue names.

Run `python -m bench.run` from the repository root (`--quick` for a smoke run). Results go to
stdout and to `bench/results.md`; scratch files go to `bench/out/` (git-ignored).
"""
