"""Matching simulation (issue 14): blast-to-all vs offer waves vs waves + a queue. docs/matching.md."""
