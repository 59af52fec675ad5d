"""What every agent process shares.

Spawning agents, the signal runner, logs, metrics, config files, GC policy and retry backoff.
"""
