"""Reliability middleware: Models that wrap Models (timeouts, retries, fallbacks, routing)."""
