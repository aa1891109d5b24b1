"""Tripwire: Prefect-style automation triggers evaluated over a Kafka event stream."""
