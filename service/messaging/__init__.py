"""Kafka-facing helpers: broker compatibility, topics, record formats. No business rules."""
