"""The runtime: execution graph, tasks, channels and operators (no user-facing API here)."""
