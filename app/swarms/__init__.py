"""Swarms: many agent tasks run in parallel in their own sandboxes, in the order of their dependency DAG."""
