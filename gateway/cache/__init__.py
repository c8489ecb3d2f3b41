"""Caching machinery under the service: entries and their schedule, the in-process hit cache,
cross-replica invalidation and single flight."""
