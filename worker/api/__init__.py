"""The user-facing DataStream API (re-exported from :mod:`streamjob`)."""
