"""Pipeline runs: the durable state machine, its jobs, controls and the run files (docs/engine.md)."""
