"""The action worker: turns firing records into effects (docs/actions.md)."""
