"""Keccak-256 from the fastest backend installed.

eth-hash's automatic choice is pycryptodome, about 13 µs per short input here; safe-pysha3
(installed through ``eth-hash[pysha3]``) takes under 2 µs. Routers hash every answer they
record and validators hash every leaf of every batch, so the backend is chosen explicitly.
"""

from eth_hash.main import Keccak256

try:
    from eth_hash.backends import pysha3 as _backend
except ImportError:  # safe-pysha3 missing: same digests, only slower
    from eth_hash.backends.auto import AutoBackend

    _backend = AutoBackend()  # type: ignore[assignment]

keccak = Keccak256(_backend)
