"""Test-support helpers shared by tests and benchmarks."""
