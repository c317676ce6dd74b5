"""Checkpoints: coordinator, barriers, snapshots, restore, and the completed-checkpoint store."""
