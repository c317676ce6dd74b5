"""Stream operators: what a task runs, chained together by direct calls."""
