"""Streaming scoring jobs (PyFlink DataStream API): parse, window, score in-process, alert."""
