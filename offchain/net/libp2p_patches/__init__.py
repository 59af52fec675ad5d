"""Every change this project makes to py-libp2p's behaviour, one module per patch.

Each patch is written against the pinned py-libp2p (``guard.PINNED_VERSION``), checks the
version and the shape of what it replaces before it changes anything, and has a ``verify``
that raises ``PatchError`` if it did not take effect. ``offchain.net.host.make_host`` applies
the host patches and verifies them on every host it builds; the router's gossip applies and
verifies its own. Each is written up as a change py-libp2p could take in docs/upstream/, and
its measured reason is in docs/decisions.md.

* ``lean_yamux``: yamux locks that do not yield when free, batched window credit, no extra
  checkpoint per frame (and the muxer negotiation that builds it);
* ``buffered_transport``: one buffered socket read per Noise frame, direct socket writes;
* ``task_index``: the service manager's parent-task lookup in O(1) instead of a tree walk;
* ``no_identify``: no outbound identify on each connection;
* ``gossip_notifee``: pubsub opens no stream to a peer because it connected.

``EMC_LIBP2P_PATCHES_OFF`` (comma-separated names) leaves patches out, to measure what each
still buys (``bench/router.py``); ``gossip_notifee`` is not optional (it is what keeps gossip
among admitted peers), and ``buffered_transport`` is applied by ``lean_yamux``, so it goes
when that does.
"""

from libp2p.abc import IHost

from offchain.net.libp2p_patches import (
    buffered_transport,
    lean_yamux,
    no_identify,
    task_index,
)
from offchain.net.libp2p_patches.guard import (
    OFF_ENV,
    PINNED_VERSION,
    PatchError,
    disabled,
    require_pinned_version,
)

HOST_PATCHES = (lean_yamux.NAME, buffered_transport.NAME, task_index.NAME, no_identify.NAME)

__all__ = [
    "OFF_ENV",
    "PINNED_VERSION",
    "PatchError",
    "apply_to_host",
    "switched_off",
    "verify_host",
]


def switched_off() -> frozenset[str]:
    """Return the host patches ``EMC_LIBP2P_PATCHES_OFF`` leaves out in this process."""
    return disabled(HOST_PATCHES)


def apply_to_host(host: IHost, negotiate_timeout_s: int) -> None:
    """Apply every host patch not switched off to ``host``, before it dials or listens.

    Raises ``PatchError`` if the installed py-libp2p is not the pinned version, or any patched
    attribute does not have the shape its patch was written for.
    """
    require_pinned_version()
    off = switched_off()
    if lean_yamux.NAME not in off:
        lean_yamux.install(host, negotiate_timeout_s, off)
    if task_index.NAME not in off:
        task_index.install()
    if no_identify.NAME not in off:
        no_identify.install(host)


def verify_host(host: IHost) -> None:
    """Raise ``PatchError`` unless every host patch not switched off is in effect on ``host``.

    The per-connection changes (locks, buffered reads) are checked as each connection is built,
    and on live connections by ``lean_yamux.verify_connection`` and
    ``buffered_transport.verify_connection``.
    """
    off = switched_off()
    if lean_yamux.NAME not in off:
        lean_yamux.verify(host)
    if task_index.NAME not in off:
        task_index.verify()
    if no_identify.NAME not in off:
        no_identify.verify(host)
