"""The cumulative ledger that commit roots are built from."""

from eth_utils import to_checksum_address

from offchain.protocol import merkle
from offchain.protocol.billing import billing_leaf
from offchain.protocol.ledger import Invocation, Ledger, batch_root, record_hash
from offchain.protocol.rewards import rewards_leaf

USER = to_checksum_address("0x" + "11" * 20)
NODE = to_checksum_address("0x" + "22" * 20)
ROUTER = to_checksum_address("0x" + "33" * 20)


def invocation(price: int, n: int = 0) -> Invocation:
    return Invocation(USER, NODE, ROUTER, price, record_hash("test", n))


def test_apply__bills_user_and_splits_price_between_router_and_node():
    ledger = Ledger(router_share_bps=1_000)
    assert ledger.apply([invocation(1_000), invocation(10, 1)]) == 1_010
    assert ledger.spent == {USER: 1_010}
    assert ledger.earned == {ROUTER: 100 + 1, NODE: 900 + 9}


def test_apply__another_node_served_an_open_socket__issuer_gets_its_share():
    issuer = to_checksum_address("0x" + "44" * 20)
    ledger = Ledger()
    served = Invocation(USER, NODE, ROUTER, 1_009, record_hash("test", 0), issuer=issuer)
    by_issuer = Invocation(USER, NODE, ROUTER, 1_000, record_hash("test", 1), issuer=NODE)
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
