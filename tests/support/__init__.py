"""Helpers shared by test modules: the Kafka test bed, the fake CleverTap process, metrics deltas."""
