"""The data plane between TaskManagers: TCP channels with credit-based flow control."""
