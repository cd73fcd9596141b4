"""Benchmarks: fan-out latency, loss, ingest and idle cost, against bare Pushpin.

Run ``make bench`` (``python -m bench``); see docs/BENCHMARKS.md.
"""
