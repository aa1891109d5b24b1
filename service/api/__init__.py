"""The automations REST API (Prefect's routes) and explain."""
