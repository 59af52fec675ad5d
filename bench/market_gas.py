"""Gas of the socket and market operations, measured on a fresh anvil with the real deployment.

    .venv/bin/python -m bench.market_gas [--quick] [--results-dir DIR]

Prints a table and merges the figures into bench/results/gas.json (key `market_gas`). The baseline
in the same run is one ERC-20 transfer of EMC. Withdrawals with a proof are measured against
billing trees of 2, 1,024 and 1,048,576 users (proofs of 1, 10 and 20 siblings; `--quick`: 2 and
1,024). The deployment wires the market to ComputeConsensus; the bench settles as that contract
(anvil impersonates its address), since the market checks only the caller.
"""

import sys
import tempfile
from pathlib import Path

from eth_utils import keccak
from rich.console import Console
from rich.table import Table

from offchain.chain.anvil import rpc, start_anvil
from offchain.chain.chain_client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.protocol import merkle
from offchain.protocol.billing import billing_leaf
from offchain.protocol.permit import sign_permit

from ._common import bench_parser, write_json

RESULTS_FILE = "gas.json"
EMC = 10**18
TREE_SIZES = (2, 1_024, 1_048_576)
QUICK_TREE_SIZES = (2, 1_024)


def _permit(token, owner, spender: str, value: int, deadline: int, chain_id: int):
    """Return the owner's EIP-2612 permit signature for EMCToken."""
    nonce = token.functions.nonces(owner.address).call()
    return sign_permit(owner.key, token.address, chain_id, spender, value, nonce, deadline)


def _tree_with(user: str, spent: int, size: int) -> tuple[bytes, list[bytes]]:
    """Return a billing root of ``size`` users, ``user`` first, and ``user``'s proof."""
    leaves = [billing_leaf(user, spent)]
    leaves += [keccak(i.to_bytes(32, "big")) for i in range(size - 1)]  # other users' leaves
    tree = merkle.build(leaves)
    return tree.root, tree.proof(0)


def _wait_out(url: str, market) -> None:
    """Move the chain's clock past the market's withdraw delay."""
    rpc(url, "evm_increaseTime", [market.functions.withdraw_delay().call()])
    rpc(url, "evm_mine")


def _as_contract(chain: ChainClient, url: str, address: str, call) -> int:
    """Send ``call`` from the contract at ``address`` (impersonated on anvil); return its gas."""
    rpc(url, "anvil_impersonateAccount", [address])
    rpc(url, "anvil_setBalance", [address, hex(10**18)])
    try:
        tx_hash = call.transact({"from": address})
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    finally:
        rpc(url, "anvil_stopImpersonatingAccount", [address])
    if receipt["status"] != 1:
        raise RuntimeError(f"{call.fn_name} from {address} reverted")
    return receipt["gasUsed"]


def measure_market_gas(tree_sizes: tuple[int, ...] = TREE_SIZES) -> dict[str, int]:
    """Return the gas of each socket and market operation on a fresh chain."""
    with start_anvil() as anvil, tempfile.TemporaryDirectory() as tmp:
        deploy_contracts(anvil.url, fresh=True, deployments_dir=Path(tmp))
        chain = ChainClient(anvil.url, deployments_dir=Path(tmp))
        token, staking = chain["EMCToken"], chain["Staking"]
        sockets, market = chain["ComputeSocket"], chain["ComputeMarket"]
        deployer, node, users = (
            devnet_account(0),
            devnet_account(6),
            [devnet_account(i) for i in (7, 8, 9)],
        )
        consensus = chain["ComputeConsensus"].address
        assert market.functions.consensus().call() == consensus
        chain_id = chain.w3.eth.chain_id
        gas = {}
        gas["erc20_transfer"] = chain.transact(
            deployer, token.functions.transfer(node.address, 1_000 * EMC)
        ).gas_used
        for user in users:
            chain.transact(deployer, token.functions.transfer(user.address, 1_000 * EMC))
        chain.transact(node, token.functions.approve(staking.address, 100 * EMC))
        chain.transact(node, staking.functions.stake(4, 100 * EMC))
        chain.transact(
            node, staking.functions.declare_node("RTX 4090", 24_576, 500, ["matmul-f32"])
        )

        expiry = chain.w3.eth.get_block("latest")["timestamp"] + 30 * 86_400
        mint = sockets.functions.mint(
            node.address, "matmul-f32", 50, 10**15, expiry, 1_000, "ipfs://socket"
        )
        gas["socket_mint_first"] = chain.transact(node, mint).gas_used
        gas["socket_mint"] = chain.transact(node, mint).gas_used
        chain.transact(node, mint)
        gas["socket_approve_market"] = chain.transact(
            node, sockets.functions.approve(market.address, 1)
        ).gas_used
        gas["market_list"] = chain.transact(
            node, market.functions.list_socket(1, 40 * EMC)
        ).gas_used
        buyer = users[0]
        chain.transact(buyer, token.functions.approve(market.address, 2**256 - 1))
        gas["market_buy"] = chain.transact(buyer, market.functions.buy(1, 40 * EMC)).gas_used
        gas["socket_transfer_enumerable"] = chain.transact(
            node, sockets.functions.transferFrom(node.address, buyer.address, 2)
        ).gas_used

        gas["escrow_deposit_first"] = chain.transact(
            buyer, market.functions.deposit(100 * EMC)
        ).gas_used
        gas["escrow_deposit"] = chain.transact(buyer, market.functions.deposit(10 * EMC)).gas_used
        for user in users[1:]:
            deadline = expiry
            signed = _permit(token, user, market.address, 100 * EMC, deadline, chain_id)
            call = market.functions.deposit_with_permit(
                100 * EMC,
                deadline,
                signed.v,
                signed.r,
                signed.s,
            )
            gas["escrow_deposit_with_permit"] = chain.transact(user, call).gas_used

        # A withdrawal waits for the commit in flight when it was asked for, and that commit
        # carries a leaf for every depositor: first one that billed nothing (a root of one leaf,
        # so an empty proof), then proofs of growing depth.
        withdrawer = users[1]
        chain.transact(withdrawer, market.functions.request_withdraw(EMC))
        _wait_out(anvil.url, market)
        root, proof = _tree_with(withdrawer.address, 0, 1)
        _as_contract(chain, anvil.url, consensus, market.functions.settle(0, root))
        gas["escrow_withdraw_no_proof"] = chain.transact(
            withdrawer, market.functions.withdraw(0, proof)
        ).gas_used
        spent = 0
        for size in tree_sizes:
            spent += EMC
            root, proof = _tree_with(withdrawer.address, spent, size)
            chain.transact(withdrawer, market.functions.request_withdraw(EMC))
            _wait_out(anvil.url, market)
            settle = market.functions.settle(EMC, root)
            gas[f"settle_{size}_users"] = _as_contract(chain, anvil.url, consensus, settle)
            gas[f"escrow_withdraw_proof_{len(proof)}_siblings"] = chain.transact(
                withdrawer, market.functions.withdraw(spent, proof)
            ).gas_used
        return gas


def main(argv: list[str] | None = None) -> None:
    """Measure, print the table and merge the figures into bench/results/gas.json."""
    args = bench_parser(__doc__).parse_args(argv if argv is not None else [])
    gas = measure_market_gas(QUICK_TREE_SIZES if args.quick else TREE_SIZES)
    table = Table(title="Socket and market gas (anvil, fresh deployment)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("x ERC-20 transfer", justify="right")
    for operation, used in gas.items():
        table.add_row(operation, f"{used:,}", f"{used / gas['erc20_transfer']:.2f}")
    Console().print(table)
    print(f"wrote {write_json(args.results_dir / RESULTS_FILE, {'market_gas': gas}, merge=True)}")


if __name__ == "__main__":
    main(sys.argv[1:])
