"""Helpers for `make bench` (scripts/bench.py): load drivers, process control, reports."""
