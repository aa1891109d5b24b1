"""The pure trigger core: events and time in, state changes and firings out (no I/O, no clocks)."""
