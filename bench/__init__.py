"""Benchmarks (not tests): reference apps and scripts that report ratios measured in one run."""
