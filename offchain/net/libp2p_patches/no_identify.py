"""No outbound identify from our hosts (py-libp2p 0.8.1 opens one on every new connection).

py-libp2p's host runs identify towards every peer that connects, both ways (on ``connect`` and
from its connection notifee), and in a router's reconnect storm that was 10-20 % of its CPU: an
identify stream per connection, with its multistream negotiation, protobuf and peerstore
updates. Nothing here reads what identify learns (peers are found by their signed bindings and
the addresses they dial from), so each host built by ``make_host`` answers ``False`` to the
library's own question "should this peer be identified?". Peers that ask are still answered:
the identify handler is untouched. 0.8.1 has no option for it, so the host's
``_should_identify_peer`` is replaced on the instance. The upstream change:
docs/upstream/no_identify.md.
"""

from libp2p.abc import IHost
from libp2p.host.basic_host import BasicHost
from libp2p.peer.id import ID

from offchain.net.libp2p_patches.guard import PatchError, require_method, require_pinned_version

NAME = "no_identify"


def _never_identify(_peer_id: ID) -> bool:
    return False


def check_library() -> None:
    """Raise ``PatchError`` unless identify is scheduled through 0.8.1's predicate."""
    require_pinned_version()
    require_method(BasicHost, "_should_identify_peer", ("self", "peer_id"))
    require_method(BasicHost, "_schedule_identify", ("self", "peer_id", "reason"))
    if "_should_identify_peer" not in BasicHost._schedule_identify.__code__.co_names:
        raise PatchError(f"{NAME}: _schedule_identify no longer asks _should_identify_peer")


def install(host: IHost) -> None:
    """Make ``host`` never start identify towards a peer (it still answers identify)."""
    check_library()
    if not isinstance(host, BasicHost):
        raise PatchError(f"{NAME}: the host is a {type(host).__qualname__}, not a BasicHost")
    host._should_identify_peer = _never_identify  # type: ignore[method-assign]


def verify(host: IHost) -> None:
    """Raise ``PatchError`` unless ``host`` will not start identify towards any peer."""
    if vars(host).get("_should_identify_peer") is not _never_identify:
        raise PatchError(f"{NAME}: the host would still identify every peer that connects")
