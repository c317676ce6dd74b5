"""Running jobs: the job runner (attempts, checkpoints, failover) above the runtime."""
