"""The cumulative ledger that commit roots are built from."""

import dataclasses

from eth_utils import to_checksum_address

from offchain.crypto.keys import generate_keypair
from offchain.protocol import merkle
from offchain.protocol.billing import billing_leaf
from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    Receipt,
    record_digest,
    request_digest,
    sign_receipt,
    sign_record,
    sign_request,
)
from offchain.protocol.ledger import Invocation, Ledger, batch_root
from offchain.protocol.rewards import rewards_leaf

DOMAIN = InvocationDomain(31337, to_checksum_address("0x" + "44" * 20))
USER_KEY, NODE_KEY, ROUTER_KEY = (generate_keypair(bytes([k]) * 32) for k in (1, 2, 3))
USER, NODE, ROUTER = USER_KEY.address, NODE_KEY.address, ROUTER_KEY.address


def record(price: int, n: int = 0) -> InvocationRecord:
    """Return the record of the ``n``th order, served at ``price``, signed by all three."""
    order = InvocationRequest(USER, 1, "echo", b"\1" * 32, price, n, 2**40)
    receipt = Receipt(request_digest(order, DOMAIN), b"\2" * 32, 1, price, NODE, ROUTER)
    unsigned = InvocationRecord(
        order,
        sign_request(USER_KEY.private_key, order, DOMAIN),
        receipt,
        sign_receipt(NODE_KEY.private_key, receipt, DOMAIN),
        b"",
    )
    return dataclasses.replace(
        unsigned, router_signature=sign_record(ROUTER_KEY.private_key, unsigned, DOMAIN)
    )


def invocation(price: int, n: int = 0) -> Invocation:
    return Invocation.from_record(record(price, n), DOMAIN)


def test_from_record__bills_the_signer_the_receipt_price_under_the_record_digest():
    served = record(1_000, 7)
    assert Invocation.from_record(served, DOMAIN) == Invocation(
        user=USER,
        node_owner=NODE,
        router=ROUTER,
        price=1_000,
        record_hash=record_digest(served, DOMAIN),
    )
    # another domain (chain or market) is another record id
    elsewhere = InvocationDomain(DOMAIN.chain_id + 1, DOMAIN.verifying_contract)
    assert Invocation.from_record(served, elsewhere).record_hash != record_digest(served, DOMAIN)


def test_from_record__names_the_socket_issuer_only_when_another_node_served():
    served = record(1_000, 7)
    issuer = "0x" + "ab" * 20
    assert Invocation.from_record(served, DOMAIN, issuer).issuer == issuer
    assert Invocation.from_record(served, DOMAIN, NODE).issuer is None  # the issuer served it
    assert Invocation.from_record(served, DOMAIN).issuer is None


def test_apply__bills_user_and_splits_price_between_router_and_node():
    ledger = Ledger(router_share_bps=1_000)
    assert ledger.apply([invocation(1_000), invocation(10, 1)]) == 1_010
    assert ledger.spent == {USER: 1_010}
    assert ledger.earned == {ROUTER: 100 + 1, NODE: 900 + 9}


def test_apply__another_node_served_an_open_socket__issuer_gets_its_share():
    issuer = to_checksum_address("0x" + "44" * 20)
    ledger = Ledger()
    served = Invocation(USER, NODE, ROUTER, 1_009, b"\x01" * 32, issuer=issuer)
    by_issuer = Invocation(USER, NODE, ROUTER, 1_000, b"\x02" * 32, issuer=NODE)
    assert ledger.apply([served, by_issuer]) == 2_009
    assert ledger.earned == {ROUTER: 100 + 100, NODE: 809 + 900, issuer: 100}


def test_apply__is_cumulative_across_batches():
    ledger = Ledger()
    ledger.apply([invocation(500)])
    ledger.apply([invocation(500, 1)])
    assert ledger.spent[USER] == 1_000
    assert sum(ledger.earned.values()) == 1_000


def test_emit__splits_evenly_and_keeps_dust():
    ledger = Ledger()
    ledger.emit([NODE, ROUTER], 11)
    assert ledger.earned == {NODE: 5, ROUTER: 5}
    ledger.emit([], 100)
    assert sum(ledger.earned.values()) == 10


def test_trees__prove_each_account_against_the_roots():
    ledger = Ledger()
    ledger.apply([invocation(1_000)])
    tree = ledger.rewards()
    assert tree.total == 1_000
    for account, amount in tree.cumulative.items():
        assert merkle.verify(tree.root, rewards_leaf(account, amount), tree.proofs[account])
    assert ledger.billing_root() == merkle.build([billing_leaf(USER, 1_000)]).root


def test_batch_root__commits_to_records_in_order():
    first, second = invocation(1), invocation(2, 1)
    assert batch_root([first, second]) != batch_root([second])
    assert batch_root([]) == merkle.EMPTY_ROOT


def test_add_depositor__spent_nothing__has_a_leaf_the_market_can_check():
    """The ledger left out depositors who spent nothing, while the market requires their proof."""
    ledger = Ledger()
    ledger.apply([invocation(500)])
    idle = to_checksum_address("0x" + "44" * 20)
    ledger.add_depositor(idle)
    ledger.add_depositor(USER)  # a depositor that spent keeps its spent
    assert ledger.spent == {USER: 500, idle: 0}
    from offchain.protocol.billing import billing_proof

    spent, proof = billing_proof(ledger.spent, idle)
    assert spent == 0
    assert merkle.verify(ledger.billing_root(), billing_leaf(idle, 0), proof)
