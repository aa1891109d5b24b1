"""Wire contracts: Prefect's event and automation JSON, and Tripwire's firing record."""
