"""The distributed runtime: JobManager and TaskManager processes over HTTP and TCP."""
