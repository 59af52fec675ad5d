# pragma version ~=0.4.3
"""
@title Compute Sockets
@custom:contract-name ComputeSocket
@license GNU Affero General Public License v3.0 only
@notice A compute socket is an ERC-721 token: a tradable right to a
        configured workload, issued by one compute node (or by a pool, which
        stakes under its operator's address). It records the workload id,
        the capacity it grants in E units, the price per invocation, the
        issuer, the terms (an expiry, an invocation budget per epoch and
        the serving terms) and a metadata URI. Only active staked compute
        nodes mint, and only sockets for workloads they declared in the
        node registry. The serving terms, fixed at mint, say which nodes
        may serve the socket's invocations: the issuer alone, or any node
        that declares the workload (with an active compute stake, or
        without one where the terms allow); `can_serve` answers for a node.
        Routers and validators check use off-chain: the request's signer
        must hold the socket, or be its current user. The user role
        (ERC-4907: `setUser`, `userOf`, `userExpires`) is how a holder
        delegates use to an AI agent's address: it expires, it is cleared
        on every transfer, and unlike an approval it cannot move or burn
        the socket. `can_use` gives the same answer on-chain. Every
        transfer also bumps the socket's EIP-4494 permit nonce (so a permit
        signed by an earlier holder never revives) and its
        `transfer_count` (which the market binds listings to).
"""


from ethereum.ercs import IERC165
implements: IERC165

from ethereum.ercs import IERC721
implements: IERC721

from snekmate.tokens.interfaces import IERC721Metadata
implements: IERC721Metadata

from snekmate.tokens.interfaces import IERC721Enumerable
implements: IERC721Enumerable

from .interfaces import IStakingRegistry


from snekmate.auth import ownable as ow
initializes: ow

from snekmate.tokens import erc721
initializes: erc721[ownable := ow]


# @dev The ERC-721 surface of snekmate's module with its metadata,
# enumeration, EIP-4494 permit and EIP-5267 parts (so `supportsInterface`
# tells the truth). Left out on purpose: `safe_mint`, `set_minter`,
# `is_minter` (minting is `mint` below, gated by stake), `burn` (the one
# below also clears the socket's record), `owner`, `transfer_ownership`,
# `renounce_ownership` (nothing here is governed; ownership is given up at
# construction).
exports: (
    erc721.balanceOf,
    erc721.ownerOf,
    erc721.approve,
    erc721.getApproved,
    erc721.setApprovalForAll,
    erc721.isApprovedForAll,
    erc721.tokenURI,
    erc721.totalSupply,
    erc721.tokenByIndex,
    erc721.tokenOfOwnerByIndex,
    erc721.name,
    erc721.symbol,
    erc721.permit,
    erc721.nonces,
    erc721.DOMAIN_SEPARATOR,
    erc721.eip712Domain,
)


# @dev The collection's name, symbol and EIP-712 signing domain version.
NAME: constant(String[25]) = "EMC Compute Socket"
SYMBOL: constant(String[5]) = "EMCS"
EIP712_VERSION: constant(String[20]) = "1"


# @dev Staking's compute role flag: minters must hold it.
ROLE_COMPUTE: constant(uint256) = 4


# @dev The registry that says who is an active compute node.
staking: public(immutable(IStakingRegistry))


# @dev What one socket grants.
struct Socket:
    workload: String[32]
    capacity: uint256
    price: uint256
    node: address
    expiry: uint256
    invocations_per_epoch: uint256


# @dev Each socket's record, by token id (ids start at 1).
sockets: public(HashMap[uint256, Socket])


# @dev A socket's serving terms, as `serving_terms` returns them:
# `open_serving`: any node that declares the workload may serve it, not
# only the issuer; `stake_required`: such a node must be an active compute
# node (staked, not blacklisted). The issuer always must.
struct ServingTerms:
    open_serving: bool
    stake_required: bool


# @dev How the serving terms are stored: no flag is the default terms
# (issuer-only), so a default mint writes nothing more. UNSTAKED is only
# ever set with OPEN.
flag Serving:
    OPEN
    UNSTAKED


# @dev Each socket's serving terms, by token id; fixed at mint.
serving: HashMap[uint256, Serving]


# @dev The id the next minted socket gets.
next_token_id: public(uint256)


# @dev ERC-4907's user of each socket, and when that use expires.
struct UserInfo:
    user: address
    expires: uint64


users: HashMap[uint256, UserInfo]


# @dev How many times each socket changed hands (mint and burn excluded).
transfer_count: public(HashMap[uint256, uint256])


# @dev The ERC-165 identifier of ERC-4907.
ERC4907_INTERFACE_ID: constant(bytes4) = 0xAD092B5C


event UpdateUser:
    tokenId: indexed(uint256)
    user: indexed(address)
    expires: uint64


event SocketMinted:
    token_id: uint256
    node: indexed(address)
    owner: indexed(address)
    workload: String[32]
    capacity: uint256
    price: uint256
    expiry: uint256
    invocations_per_epoch: uint256
    open_serving: bool
    stake_required: bool


event SocketBurned:
    token_id: uint256
    owner: indexed(address)


@deploy
def __init__(staking_: IStakingRegistry):
    """
    @dev Gives up the ownership (and with it the minter role) that
         snekmate's module grants the deployer: minting is open to every
         active compute node and to no one else.
    @param staking_ The Staking contract (the node registry).
    """
    ow.__init__()
    erc721.__init__(NAME, SYMBOL, "", NAME, EIP712_VERSION)
    erc721.is_minter[msg.sender] = False
    log erc721.RoleMinterChanged(minter=msg.sender, status=False)
    ow._transfer_ownership(empty(address))
    staking = staking_
    self.next_token_id = 1


# ============================================================================
# Minting and burning
# ============================================================================


@external
def mint(
    to: address,
    workload: String[32],
    capacity: uint256,
    price: uint256,
    expiry: uint256,
    invocations_per_epoch: uint256,
    uri: String[432],
    open_serving: bool = False,
    stake_required: bool = True,
) -> uint256:
    """
    @notice Mints a socket issued by the caller, an active compute node,
            for a workload it declared, to `to` (itself, to list it, or a
            buyer directly), under the serving terms given (by default
            issuer-only: the caller alone serves it).
    @dev A pool mints through its operator, whose address is the pool's
         stake and registry entry. A contract recipient must accept
         ERC-721 tokens. The serving terms cannot change after mint.
    @param to The first holder.
    @param workload The workload id, e.g. "matmul-f32".
    @param capacity The capacity granted, in E units.
    @param price The price per invocation, in EMC wei.
    @param expiry The timestamp after which the socket serves no more.
    @param invocations_per_epoch The invocation budget per epoch.
    @param uri The metadata URI.
    @param open_serving Whether any node that declares the workload may
           serve the socket, not only the issuer.
    @param stake_required Whether such a node must be an active compute
           node; an issuer-only socket must say True (its issuer always is).
    @return uint256 The new token id.
    """
    assert staticcall staking.is_active(msg.sender, ROLE_COMPUTE), "socket: not an active compute node"
    assert len(workload) != 0, "socket: empty workload"
    assert self._serves(msg.sender, workload), "socket: workload not declared"
    assert capacity != 0, "socket: zero capacity"
    assert invocations_per_epoch != 0, "socket: zero invocations"
    assert expiry > block.timestamp, "socket: expiry in the past"
    assert open_serving or stake_required, "socket: issuer-only needs stake"

    token_id: uint256 = self.next_token_id
    self.next_token_id = token_id + 1
    self.sockets[token_id] = Socket(
        workload=workload,
        capacity=capacity,
        price=price,
        node=msg.sender,
        expiry=expiry,
        invocations_per_epoch=invocations_per_epoch,
    )
    if open_serving:
        self.serving[token_id] = Serving.OPEN if stake_required else Serving.OPEN | Serving.UNSTAKED
    log SocketMinted(
        token_id=token_id,
        node=msg.sender,
        owner=to,
        workload=workload,
        capacity=capacity,
        price=price,
        expiry=expiry,
        invocations_per_epoch=invocations_per_epoch,
        open_serving=open_serving,
        stake_required=stake_required,
    )
    # The record is written before the receiver hook runs (checks, effects,
    # interactions), so a reentrant call sees a complete socket.
    erc721._safe_mint(to, token_id, b"")
    erc721._set_token_uri(token_id, uri)
    return token_id


@external
def burn(token_id: uint256):
    """
    @notice Destroys a socket and its record.
    @param token_id The socket; the caller must hold it or be approved.
    """
    assert erc721._is_approved_or_owner(msg.sender, token_id), "socket: caller is not holder or approved"
    holder: address = erc721._owner_of(token_id)
    erc721._burn(token_id)
    self.sockets[token_id] = empty(Socket)
    self.serving[token_id] = empty(Serving)
    self.users[token_id] = empty(UserInfo)
    log SocketBurned(token_id=token_id, owner=holder)


# ============================================================================
# Views for routers, validators and the market
# ============================================================================


@external
@view
def can_use(token_id: uint256, account: address) -> bool:
    """
    @notice Whether `account` may invoke socket `token_id` now: it holds
            the socket or is its user (ERC-4907) until the use expires, the
            socket has not expired, and its node is still an active compute
            node. Approval alone does not grant use.
    @param token_id The socket.
    @param account The request's signer.
    @return bool True when the use is allowed.
    """
    if not erc721._exists(token_id):
        return False
    socket: Socket = self.sockets[token_id]
    if block.timestamp >= socket.expiry:
        return False
    if not staticcall staking.is_active(socket.node, ROLE_COMPUTE):
        return False
    if account == erc721._owner_of(token_id):
        return True
    info: UserInfo = self.users[token_id]
    return account == info.user and block.timestamp < convert(info.expires, uint256)


@external
@view
def socket_node(token_id: uint256) -> address:
    """
    @notice The node that issued socket `token_id` (the `node` field).
    @param token_id The socket.
    @return address The issuer, or the zero address for no socket.
    """
    return self.sockets[token_id].node


@external
@view
def serving_terms(token_id: uint256) -> ServingTerms:
    """
    @notice Which nodes may serve socket `token_id`, as its issuer set at
            mint: `open_serving` (any node that declares the workload, not
            only the issuer) and `stake_required` (such a node must be an
            active compute node).
    @param token_id The socket.
    @return ServingTerms The terms; issuer-only for no socket.
    """
    return self._terms(token_id)


@external
@view
def can_serve(token_id: uint256, node: address) -> bool:
    """
    @notice Whether `node` may serve an invocation of socket `token_id`
            now, by the rule routers and validators apply to the receipt's
            worker: the socket exists and has not expired, its issuer is an
            active compute node, `node` is not blacklisted and declares the
            socket's workload, `node` is the issuer or the terms are open,
            and `node` is an active compute node where it is the issuer or
            the terms require stake.
    @param token_id The socket.
    @param node The serving node (the receipt's worker).
    @return bool True when `node` may serve it.
    """
    if not erc721._exists(token_id):
        return False
    socket: Socket = self.sockets[token_id]
    if block.timestamp >= socket.expiry:
        return False
    if not staticcall staking.is_active(socket.node, ROLE_COMPUTE):
        return False
    terms: ServingTerms = self._terms(token_id)
    if node != socket.node and not terms.open_serving:
        return False
    # Active means staked and not blacklisted.
    if node == socket.node or terms.stake_required:
        if not staticcall staking.is_active(node, ROLE_COMPUTE):
            return False
    entry: IStakingRegistry.Node = staticcall staking.nodes(node)
    if entry.blacklisted:
        return False
    for declared: String[32] in entry.workloads:
        if declared == socket.workload:
            return True
    return False


@internal
@view
def _terms(token_id: uint256) -> ServingTerms:
    """
    @dev Socket `token_id`'s serving terms, from their stored flags.
    @param token_id The socket.
    @return ServingTerms The terms.
    """
    serving: Serving = self.serving[token_id]
    return ServingTerms(
        open_serving=Serving.OPEN in serving,
        stake_required=Serving.UNSTAKED not in serving,
    )


@internal
@view
def _serves(node: address, workload: String[32]) -> bool:
    """
    @dev Whether `node` declared `workload` in the registry.
    @param node The node.
    @param workload The workload id.
    @return bool True when declared.
    """
    for declared: String[32] in staticcall staking.node_workloads(node):
        if declared == workload:
            return True
    return False


# ============================================================================
# Transfers (every one clears the user and bumps the permit nonce)
# ============================================================================


@external
@payable
def transferFrom(owner: address, to: address, token_id: uint256):
    """
    @notice Transfers socket `token_id` from `owner` to `to` (ERC-721).
    @dev Clears the user and bumps the permit nonce and transfer count.
    @param owner The holder.
    @param to The recipient.
    @param token_id The socket.
    """
    assert erc721._is_approved_or_owner(msg.sender, token_id), "erc721: caller is not token owner or approved"
    self._on_transfer(token_id)
    erc721._transfer(owner, to, token_id)


@external
@payable
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    """
    @notice Transfers socket `token_id` from `owner` to `to`, checking that
            a contract recipient accepts ERC-721 tokens.
    @dev Clears the user and bumps the permit nonce and transfer count.
    @param owner The holder.
    @param to The recipient.
    @param token_id The socket.
    @param data Passed to the recipient's `onERC721Received`.
    """
    assert erc721._is_approved_or_owner(msg.sender, token_id), "erc721: caller is not token owner or approved"
    self._on_transfer(token_id)
    erc721._safe_transfer(owner, to, token_id, data)


@external
@view
def supportsInterface(interface_id: bytes4) -> bool:
    """
    @notice ERC-165: the snekmate ERC-721 interfaces and ERC-4907.
    @param interface_id The interface identifier.
    @return bool True when supported.
    """
    return interface_id == ERC4907_INTERFACE_ID or interface_id in erc721._SUPPORTED_INTERFACES


# ============================================================================
# ERC-4907: an expiring user, separate from approval
# ============================================================================


@external
def setUser(tokenId: uint256, user: address, expires: uint64):
    """
    @notice Lets `user` use socket `tokenId` until `expires` (a timestamp);
            the zero address removes the user. The user can invoke the
            socket but cannot transfer, burn or approve it.
    @param tokenId The socket.
    @param user The delegate (an AI agent's address, say).
    @param expires When the use ends.
    """
    assert erc721._is_approved_or_owner(msg.sender, tokenId), "socket: caller is not holder or approved"
    self.users[tokenId] = UserInfo(user=user, expires=expires)
    log UpdateUser(tokenId=tokenId, user=user, expires=expires)


@external
@view
def userOf(tokenId: uint256) -> address:
    """
    @notice The current user of socket `tokenId`, or the zero address when
            none is set or its use expired.
    @param tokenId The socket.
    @return address The user.
    """
    info: UserInfo = self.users[tokenId]
    if block.timestamp >= convert(info.expires, uint256):
        return empty(address)
    return info.user


@external
@view
def userExpires(tokenId: uint256) -> uint256:
    """
    @notice When the use of socket `tokenId` by its user ends.
    @param tokenId The socket.
    @return uint256 The timestamp.
    """
    return convert(self.users[tokenId].expires, uint256)


@internal
def _on_transfer(token_id: uint256):
    """
    @dev Ends the user's delegation, invalidates every permit signed for
         the socket so far and counts the transfer.
    @param token_id The socket.
    """
    erc721.nonces[token_id] += 1
    self.transfer_count[token_id] += 1
    if self.users[token_id].user != empty(address):
        self.users[token_id] = empty(UserInfo)
        log UpdateUser(tokenId=token_id, user=empty(address), expires=0)
