"""Identity binding: a signed statement that ties a libp2p peer id to an Ethereum address.

The agent's secp256k1 (Ethereum) key signs ``keccak(DOMAIN || peer id || address || expiry)``.
The peer id itself is authenticated by the Noise handshake, so a verified binding proves that
the peer on this connection speaks for that address, and so for that address's stake.

A binding only says "this address claims that peer id"; anyone can sign such a claim about
someone else's peer id. That is enough when the peer presents it on its own connection, not
when it reaches us relayed. An *endorsed* binding adds the libp2p key's consent: the peer's
Ed25519 key (embedded in its peer id) signs ``ENDORSE_DOMAIN || binding digest``, so a binding
passed on by third parties (the router mesh) still ties that peer id to that address.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from eth_utils import to_canonical_address, to_checksum_address
from libp2p.crypto.keys import PrivateKey
from libp2p.peer.id import ID

from offchain.crypto.hashing import keccak
from offchain.crypto.keys import InvalidSignature, Keypair, recover_address
from offchain.protocol.errors import InputRejected
from offchain.protocol.frames import FrameError, decode_body, encode_body
from offchain.protocol.roles import ROLES

logger = logging.getLogger(__name__)

DOMAIN = b"EMC identity binding v1"
ENDORSE_DOMAIN = b"EMC identity binding endorsement v1"
DEFAULT_TTL_S = 30 * 24 * 3_600
ED25519_SIGNATURE_SIZE = 64
MAX_ENDORSED_BINDING = 512


class BindingError(InputRejected):
    """A binding that is malformed, expired, for another peer, or wrongly signed."""

    reason = "bad-binding"


@dataclass(frozen=True)
class Binding:
    """A signed statement that ``address`` controls the libp2p identity ``peer_id``."""

    peer_id: str
    address: str
    expiry: int
    signature: bytes


def binding_digest(peer_id: str, address: str, expiry: int) -> bytes:
    """Return the 32-byte digest an address signs to bind itself to ``peer_id``."""
    return keccak(
        DOMAIN
        + len(peer_id).to_bytes(2, "big")
        + peer_id.encode()
        + to_canonical_address(address)
        + expiry.to_bytes(8, "big")
    )


def make_binding(keypair: Keypair, peer_id: str, ttl_s: int = DEFAULT_TTL_S) -> Binding:
    """Return a binding of ``peer_id`` signed by ``keypair``, valid for ``ttl_s`` seconds."""
    expiry = int(time.time()) + ttl_s
    digest = binding_digest(peer_id, keypair.address, expiry)
    return Binding(peer_id, keypair.address, expiry, keypair.sign_hash(digest))


def encode_binding(binding: Binding) -> bytes:
    """Return the canonical bytes of a binding."""
    return encode_body(
        {
            "peer_id": binding.peer_id,
            "address": bytes(to_canonical_address(binding.address)),
            "expiry": binding.expiry,
            "signature": binding.signature,
        }
    )


def decode_binding(data: bytes) -> Binding:
    """Return the binding in ``data`` or raise ``BindingError``."""
    try:
        value = decode_body(data)
    except FrameError as exc:
        raise BindingError(str(exc)) from exc
    if set(value) != {"peer_id", "address", "expiry", "signature"}:
        raise BindingError("binding has the wrong fields")
    peer_id, address, expiry, signature = (
        value["peer_id"],
        value["address"],
        value["expiry"],
        value["signature"],
    )
    if not isinstance(peer_id, str) or not 0 < len(peer_id) <= 128:
        raise BindingError("bad peer id")
    if not isinstance(address, bytes) or len(address) != 20:
        raise BindingError("bad address")
    if isinstance(expiry, bool) or not isinstance(expiry, int) or not 0 <= expiry < 2**63:
        raise BindingError("bad expiry")
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise BindingError("bad signature length")
    return Binding(peer_id, to_checksum_address(address), expiry, signature)


def verify_binding(binding: Binding, remote_peer_id: str, now: float | None = None) -> str:
    """Return the bound address if ``binding`` is valid for ``remote_peer_id``, else raise."""
    if binding.peer_id != remote_peer_id:
        raise BindingError("binding names another peer")
    if binding.expiry < (time.time() if now is None else now):
        raise BindingError("binding expired")
    digest = binding_digest(binding.peer_id, binding.address, binding.expiry)
    try:
        signer = recover_address(digest, binding.signature)
    except InvalidSignature as exc:
        raise BindingError(f"bad signature: {exc}") from exc
    if signer != binding.address:
        raise BindingError("binding not signed by its address")
    return binding.address


@dataclass(frozen=True)
class EndorsedBinding:
    """A binding countersigned by the libp2p key of the peer it names."""

    binding: Binding
    peer_signature: bytes


def endorsement_message(binding: Binding) -> bytes:
    """Return the bytes the peer's libp2p key signs to endorse ``binding``."""
    return ENDORSE_DOMAIN + binding_digest(binding.peer_id, binding.address, binding.expiry)


def make_endorsed_binding(
    keypair: Keypair, libp2p_key: PrivateKey, peer_id: str, ttl_s: int = DEFAULT_TTL_S
) -> EndorsedBinding:
    """Return a binding of ``peer_id`` to ``keypair``, endorsed by the peer's ``libp2p_key``."""
    if ID.from_pubkey(libp2p_key.get_public_key()).to_string() != peer_id:
        raise ValueError("the libp2p key is not the key of that peer id")
    binding = make_binding(keypair, peer_id, ttl_s)
    return EndorsedBinding(binding, libp2p_key.sign(endorsement_message(binding)))


def encode_endorsed_binding(endorsed: EndorsedBinding) -> bytes:
    """Return the canonical bytes of an endorsed binding."""
    return encode_body(
        {"binding": encode_binding(endorsed.binding), "peer_signature": endorsed.peer_signature}
    )


def decode_endorsed_binding(data: bytes) -> EndorsedBinding:
    """Return the endorsed binding in ``data`` or raise ``BindingError``."""
    if len(data) > MAX_ENDORSED_BINDING:
        raise BindingError(f"endorsed binding of {len(data)} bytes")
    try:
        value = decode_body(data)
    except FrameError as exc:
        raise BindingError(str(exc)) from exc
    if set(value) != {"binding", "peer_signature"}:
        raise BindingError("endorsed binding has the wrong fields")
    inner, peer_signature = value["binding"], value["peer_signature"]
    if not isinstance(inner, bytes):
        raise BindingError("bad inner binding")
    if not isinstance(peer_signature, bytes) or len(peer_signature) != ED25519_SIGNATURE_SIZE:
        raise BindingError("bad peer signature length")
    return EndorsedBinding(decode_binding(inner), peer_signature)


def verify_endorsed_binding(
    endorsed: EndorsedBinding, peer_id: str, now: float | None = None
) -> str:
    """Return the bound address if both keys signed a binding of ``peer_id``, else raise.

    Unlike ``verify_binding`` this needs no authenticated connection to ``peer_id``: the public
    key comes out of the peer id itself (identity-hashed Ed25519 ids only).
    """
    address = verify_binding(endorsed.binding, peer_id, now)
    try:
        public_key = ID.from_base58(peer_id).extract_public_key()
    except ValueError as exc:
        raise BindingError(f"bad peer id: {exc}") from exc
    if public_key is None:
        raise BindingError("peer id does not embed its public key")
    try:
        ok = public_key.verify(endorsement_message(endorsed.binding), endorsed.peer_signature)
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign key type is a bad signature
        raise BindingError(f"bad peer signature: {type(exc).__name__}") from exc
    if not ok:
        raise BindingError("binding not endorsed by the peer's libp2p key")
    return address


# Whether an address is staked for one role (a node's router asks about COMPUTE, a mesh
# router about ROUTER).
StakeCheck = Callable[[str], bool]
# Whether an address is staked for a role: the shape of ``Staking.is_active``, so the chain
# view plugs in where the static one is used now.
RoleCheck = Callable[[str, int], bool]


def static_stake_check(staked: Iterable[str]) -> StakeCheck:
    """Return a stake check that knows a fixed set of staked addresses (config or snapshot)."""
    known = frozenset(to_checksum_address(a) for a in staked)
    return lambda address: address in known


def static_role_check(staked: Mapping[int, Iterable[str]]) -> RoleCheck:
    """Return a role check that knows fixed staked addresses per role flag (config or snapshot).

    Raises ``ValueError`` for a key that is not one role flag.
    """
    unknown = [role for role in staked if role not in ROLES]
    if unknown:
        raise ValueError(f"not a role flag: {unknown}")
    known = {role: static_stake_check(addresses) for role, addresses in staked.items()}
    return lambda address, role: role in known and known[role](address)


def stake_check_for(roles: RoleCheck, role: int) -> StakeCheck:
    """Return the stake check for one ``role`` of a role check."""
    return lambda address: roles(address, role)


def classify_peer(data: bytes, remote_peer_id: str, is_staked: StakeCheck) -> tuple[str, bool]:
    """Return ``(address or "", staked)`` for a peer's presented binding bytes.

    A peer without a valid binding, or bound to an unstaked address, is unstaked.
    """
    if not data:
        return "", False
    try:
        address = verify_binding(decode_binding(data), remote_peer_id)
    except BindingError as exc:
        logger.info("peer %s presented an invalid binding: %s", remote_peer_id, exc)
        return "", False
    return address, bool(is_staked(address))
