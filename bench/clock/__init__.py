"""Session clock precision benchmark (see run.py)."""
