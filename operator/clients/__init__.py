"""The operator's outbound I/O: the Kubernetes API (:mod:`.kube`) and the JobManager REST API
(:mod:`.jobmanager`, with the :mod:`.testing` fake). Only these modules talk to anything.
"""
