"""Benchmarks: trainforge measured against its baselines."""
