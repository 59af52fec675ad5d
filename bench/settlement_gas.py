"""Settlement gas: commits at 4 to 128 validators against an ecrecover quorum, claims, and the
amortized cost per invocation, all measured on anvil in one run.

    .venv/bin/python -m bench.settlement_gas [--sizes 4,16,64,128] [--quick] [--results-dir DIR]

Prints a table and merges these keys into bench/results/gas.json: `commit_gas` (a bare quorum
signing: the most non-signers a commit can have), `commit_gas_breakdown` (where its gas goes),
`commit_gas_all_signing` (every member signing) and `ecrecover_baseline_gas` (keyed by validator
count), `claim_gas` (keyed by leaves, "1000" and "100000"), `erc20_transfer_gas`,
`amortized_gas_per_invocation` and the figures behind it.
`--quick`: 4 validators and claims at 1,000 leaves only.
"""

import json
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from eth_account import Account
from rich.console import Console
from rich.table import Table

from offchain.chain.anvil import REPO_ROOT, Anvil, start_anvil
from offchain.chain.chain_client import ChainClient, devnet_account
from offchain.chain.deploy import deploy_contracts
from offchain.chain.settlement import submit_commit
from offchain.crypto import bls
from offchain.crypto.keys import Keypair, generate_keypair, keypair_from_private_key
from offchain.protocol.commit import Commit, commit_digest
from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRecord,
    InvocationRequest,
    Receipt,
    request_digest,
    sign_receipt,
    sign_record,
    sign_request,
)
from offchain.protocol.ledger import Invocation, Ledger, batch_root

from ._common import bench_parser, write_json

RESULTS_FILE = "gas.json"
CLAIM_LEAVES = (1_000, 100_000)
EMC = 10**18
STAKE = 10_000 * EMC
INVOCATIONS_PER_BATCH = 1_000
WORKERS = 50
ROUTERS = 2
CLAIM_EVERY_BATCHES = 100
VALIDATOR_CLAIM_EVERY_BATCHES = 64
PRICE = EMC // 100


@dataclass
class System:
    anvil: Anvil
    chain: ChainClient
    validators: list  # (LocalAccount, bls secret) in set order
    ledger: Ledger
    height: int = 0
    last_signers: int = 0  # the last commit's bitmap: the next commit seals it as its parent


def _artifact(name: str) -> tuple[list, str]:
    build = json.loads((REPO_ROOT / ".build" / "__local__.json").read_text())
    contract = build["contractTypes"][name]
    return contract["abi"], contract["deploymentBytecode"]["bytecode"]


def _funded_account(chain: ChainClient, seed: bytes):
    account = Account.from_key(generate_keypair(seed).private_key)
    chain.w3.provider.make_request("anvil_setBalance", [account.address, hex(100 * EMC)])
    return account


def start_system(validators: int, tmp: Path) -> System:
    """Deploy everything on a fresh anvil with ``validators`` staked, registered validators."""
    anvil = start_anvil()
    deploy_contracts(anvil.url, fresh=True, deployments_dir=tmp, abi_dir=tmp)
    chain = ChainClient(anvil.url, deployments_dir=tmp, abi_dir=tmp)
    token, staking = chain["EMCToken"], chain["Staking"]
    deployer = devnet_account(0)
    members = []
    for i in range(validators):
        account = _funded_account(chain, f"bench-validator-{i}".encode())
        secret = bls.keygen(f"bench-validator-{i}".encode())
        chain.transact(deployer, token.functions.transfer(account.address, STAKE))
        chain.transact(account, token.functions.approve(staking.address, STAKE))
        chain.transact(account, staking.functions.stake(1, STAKE))
        call = staking.functions.register_validator(
            bls.pubkey_to_eip2537(bls.public_key(secret)),
            bls.signature_to_eip2537(bls.prove_possession(secret, account.address)),
        )
        chain.transact(account, call)
        members.append((account, secret))
    gpu_reward = chain["GPUComputeReward"]
    chain.transact(deployer, token.functions.approve(gpu_reward.address, 10**6 * EMC))
    chain.transact(deployer, gpu_reward.functions.fund_emission(10**6 * EMC))
    chain.transact(
        deployer, token.functions.transfer(chain["ConsensusReward"].address, 10**5 * EMC)
    )
    chain.transact(deployer, chain["ComputeConsensus"].functions.bootstrap())
    user = devnet_account(11)
    market = chain["ComputeMarket"]
    chain.transact(deployer, token.functions.transfer(user.address, 10**5 * EMC))
    chain.transact(user, token.functions.approve(market.address, 10**5 * EMC))
    chain.transact(user, market.functions.deposit(10**5 * EMC))
    return System(anvil, chain, members, Ledger())


def _workers() -> tuple[list[Keypair], list[Keypair]]:
    workers = [generate_keypair(b"w%d" % i) for i in range(WORKERS)]
    routers = [keypair_from_private_key(devnet_account(5 + i).key) for i in range(ROUTERS)]
    return workers, routers


def _record(
    domain: InvocationDomain, user: Keypair, worker: Keypair, router: Keypair, nonce: int
) -> InvocationRecord:
    """Return the record of one served order: signed by the user, the worker and the router."""
    order = InvocationRequest(user.address, 1, "matmul-f32", b"\1" * 32, PRICE, nonce, 2**40)
    receipt = Receipt(
        request_digest(order, domain), b"\2" * 32, 1, PRICE, worker.address, router.address
    )
    record = InvocationRecord(
        order,
        sign_request(user.private_key, order, domain),
        receipt,
        sign_receipt(worker.private_key, receipt, domain),
        b"",
    )
    return replace(record, router_signature=sign_record(router.private_key, record, domain))


def next_commit(system: System, extra_leaves: dict[str, int] | None = None) -> Commit:
    """Bill a batch of INVOCATIONS_PER_BATCH records spread over WORKERS; return its commit."""
    workers, routers = _workers()
    user = keypair_from_private_key(devnet_account(11).key)
    domain = InvocationDomain(system.chain.w3.eth.chain_id, system.chain["ComputeMarket"].address)
    height = system.height + 1
    invocations = [
        Invocation.from_record(
            _record(
                domain,
                user,
                workers[n % WORKERS],
                routers[n % ROUTERS],
                height * INVOCATIONS_PER_BATCH + n,
            ),
            domain,
        )  # fmt: skip
        for n in range(INVOCATIONS_PER_BATCH)
    ]
    billed = system.ledger.apply(invocations)
    earned = dict(system.ledger.earned)
    earned.update(extra_leaves or {})
    from offchain.protocol.rewards import rewards_tree

    tree = rewards_tree(earned)
    system.last_tree = tree
    return Commit(
        height=height,
        batch_root=batch_root(invocations),
        billing_root=system.ledger.billing_root(),
        rewards_root=tree.root,
        rewards_total=tree.total,
        billed_total=billed,
    )


def commit(
    system: System, commit_: Commit, signer_count: int, breakdown: dict | None = None
) -> int:
    """Submit ``commit_`` sealed by the first ``signer_count`` members; return its gas (and fill
    ``breakdown`` with where it went, when given)."""
    signers = {i: system.validators[i][1] for i in range(signer_count)}
    if commit_.height > 1:
        commit_ = replace(commit_, parent_signers=system.last_signers)
    receipt = submit_commit(system.chain, commit_, signers, system.validators[0][0])
    system.height = commit_.height
    system.last_signers = (1 << signer_count) - 1
    if breakdown is not None:
        from bench.gas import commit_breakdown

        breakdown.update(commit_breakdown(system.chain, receipt.tx_hash))
    return receipt.gas_used


def quorum_count(validators: int) -> int:
    """Return how many equal-stake validators meet floor(2P/3)+1."""
    return 2 * validators // 3 + 1


def ecrecover_baseline(system: System, signer_count: int) -> int:
    """Return the gas of checking the same quorum with one ecrecover per signer."""
    abi, bytecode = _artifact("EcrecoverQuorum")
    chain, deployer = system.chain, devnet_account(0)
    factory = chain.w3.eth.contract(abi=abi, bytecode=bytecode)
    tx = factory.constructor().build_transaction(
        {"from": deployer.address, "nonce": chain.w3.eth.get_transaction_count(deployer.address)}
    )
    tx_hash = chain.w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction)
    address = chain.w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]
    baseline = chain.w3.eth.contract(address=address, abi=abi)
    keys = [
        generate_keypair(f"bench-validator-{i}".encode()) for i in range(len(system.validators))
    ]
    chain.transact(
        deployer,
        baseline.functions.add_members([k.address for k in keys], [STAKE] * len(keys)),
    )
    digest = commit_digest(next_commit_probe(system), chain.w3.eth.chain_id, address)
    signing = sorted(keys[:signer_count], key=lambda k: int(k.address, 16))
    signatures = [k.sign_hash(digest) for k in signing]
    return chain.transact(deployer, baseline.functions.verify_quorum(digest, signatures)).gas_used


def next_commit_probe(system: System) -> Commit:
    return Commit(height=system.height + 1, batch_root=b"\x01" * 32, billing_root=b"\x02" * 32,
                  rewards_root=b"\x03" * 32, rewards_total=0)  # fmt: skip


def measure(sizes: list[int], claim_leaves: tuple[int, ...] = CLAIM_LEAVES) -> dict:
    """Run every measurement and return the results."""
    results: dict = {
        "commit_gas": {},
        "commit_gas_breakdown": {},
        "commit_gas_all_signing": {},
        "ecrecover_baseline_gas": {},
        "signers": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            system = start_system(size, Path(tmp) / str(size))
            try:
                k = quorum_count(size)
                commit(system, next_commit(system), k)  # the first commit warms storage
                parts: dict = {}
                results["commit_gas"][str(size)] = commit(system, next_commit(system), k, parts)
                results["commit_gas_breakdown"][str(size)] = parts
                # The same set when every member signs: no non-signer to subtract.
                results["commit_gas_all_signing"][str(size)] = commit(
                    system, next_commit(system), size
                )
                results["signers"][str(size)] = k
                results["ecrecover_baseline_gas"][str(size)] = ecrecover_baseline(system, k)
                if size == min(sizes):
                    results.update(claims_and_amortization(system, k, claim_leaves))
            finally:
                system.anvil.stop()
    return results


def claims_and_amortization(
    system: System, signers: int, claim_leaves: tuple[int, ...] = CLAIM_LEAVES
) -> dict:
    """Measure claim gas at each of ``claim_leaves``, and the amortized cost per invocation."""
    chain, token = system.chain, system.chain["EMCToken"]
    gpu_reward, consensus_reward = chain["GPUComputeReward"], chain["ConsensusReward"]
    out = {"claim_gas": {}, "claim_gas_first": {}}
    workers = [worker.address for worker in _workers()[0]]
    for leaves in claim_leaves:
        filler = {
            "0x" + (i + 1).to_bytes(20, "big").hex(): 1
            for i in range(leaves - len(system.ledger.earned))
        }
        commit(system, next_commit(system, filler), signers)
        tree = system.last_tree
        first = workers[leaves % 7]
        second = workers[leaves % 7 + 1]
        claim = gpu_reward.functions.claim
        out["claim_gas_first"][str(leaves)] = chain.transact(
            devnet_account(0), claim(first, tree.cumulative[first], tree.proofs[first])
        ).gas_used
        # Steady state: an account that claimed before claims again (what a worker does every
        # CLAIM_EVERY_BATCHES batches).
        chain.transact(
            devnet_account(0), claim(second, tree.cumulative[second], tree.proofs[second])
        )
        commit(system, next_commit(system, filler), signers)
        tree = system.last_tree
        out["claim_gas"][str(leaves)] = chain.transact(
            devnet_account(0), claim(second, tree.cumulative[second], tree.proofs[second])
        ).gas_used
    steady_commit = commit(system, next_commit(system), signers)
    # A height's reward is claimable once the next commit seals its signers: the last height
    # is not claimable yet.
    heights = list(range(1, system.height))[-VALIDATOR_CLAIM_EVERY_BATCHES:]
    validator_claim = chain.transact(
        system.validators[0][0], consensus_reward.functions.claim(heights, [0] * len(heights))
    ).gas_used
    deployer = devnet_account(0)
    erc20 = chain.transact(deployer, token.functions.transfer(workers[0], 1)).gas_used
    worker_claim = out["claim_gas"]["1000"]
    per_batch = (
        steady_commit
        + WORKERS * worker_claim / CLAIM_EVERY_BATCHES
        + len(system.validators) * validator_claim / len(heights)
    )
    out.update(
        erc20_transfer_gas=erc20,
        amortized_gas_per_invocation=round(per_batch / INVOCATIONS_PER_BATCH, 1),
        amortization={
            "validators": len(system.validators),
            "commit_gas": steady_commit,
            "worker_claim_gas": worker_claim,
            "workers": WORKERS,
            "worker_claims_every_batches": CLAIM_EVERY_BATCHES,
            "validator_claim_gas": validator_claim,
            "validator_claim_heights": len(heights),
            "invocations_per_batch": INVOCATIONS_PER_BATCH,
        },
    )
    return out


def main(argv: list[str] | None = None) -> None:
    """Measure, print the tables and merge the figures into bench/results/gas.json."""
    parser = bench_parser(__doc__)
    parser.add_argument("--sizes", default="4,16,64,128")
    args = parser.parse_args(argv if argv is not None else [])
    sizes = [4] if args.quick else [int(s) for s in args.sizes.split(",")]
    results = measure(sizes, CLAIM_LEAVES[:1] if args.quick else CLAIM_LEAVES)
    console = Console()
    table = Table(
        title="Commit gas: BLS aggregate (2/3 quorum signing) vs one ecrecover per signer"
    )
    columns = (
        "validators",
        "signers",
        "BLS commit",
        "x smallest",
        "all signing",
        "ecrecover quorum only",
    )
    for column in columns:
        table.add_column(column, justify="right")
    base = results["commit_gas"][str(sizes[0])]
    for size in sizes:
        key = str(size)
        table.add_row(
            key,
            str(results["signers"][key]),
            f"{results['commit_gas'][key]:,}",
            f"{results['commit_gas'][key] / base:.2f}",
            f"{results['commit_gas_all_signing'][key]:,}",
            f"{results['ecrecover_baseline_gas'][key]:,}",
        )
    console.print(table)
    parts = [p for p in results["commit_gas_breakdown"][str(sizes[0])] if p != "total"]
    breakdown = Table(title="Where commit gas goes (call trace), by validator count")
    breakdown.add_column("part")
    for size in sizes:
        breakdown.add_column(str(size), justify="right")
    for part in [*parts, "total"]:
        breakdown.add_row(
            part,
            *(f"{results['commit_gas_breakdown'][str(s)].get(part, 0):,}" for s in sizes),
        )
    console.print(breakdown)
    claims = Table(title="Reward claim gas (GPUComputeReward)")
    for column in ("leaves", "repeat claim", "first claim"):
        claims.add_column(column, justify="right")
    for leaves in results["claim_gas"]:
        claims.add_row(
            leaves, f"{results['claim_gas'][leaves]:,}", f"{results['claim_gas_first'][leaves]:,}"
        )
    console.print(claims)
    console.print(
        f"Amortized settlement gas per invocation: {results['amortized_gas_per_invocation']:,} "
        f"(one ERC-20 transfer: {results['erc20_transfer_gas']:,}) {results['amortization']}"
    )
    print(f"wrote {write_json(args.results_dir / RESULTS_FILE, results, merge=True)}")


if __name__ == "__main__":
    main(sys.argv[1:])
