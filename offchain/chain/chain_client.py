"""The agents' door to the chain.

Contracts come from a deployment record and the exported ABIs, transactions are signed with
local keys, and reverts are turned into clear errors.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from offchain.chain.access_list import useful_entries
from offchain.chain.anvil import DEVNET_MNEMONIC, REPO_ROOT

log = logging.getLogger(__name__)

DEFAULT_ABI_DIR = REPO_ROOT / "abi"
DEFAULT_DEPLOYMENTS_DIR = REPO_ROOT / "deployments"

Account.enable_unaudited_hdwallet_features()


class ChainError(RuntimeError):
    """A call the chain refused, with its revert reason, or a misconfigured connection."""


def devnet_account(index: int) -> LocalAccount:
    """Return the devnet (anvil mnemonic) account at ``index``."""
    return Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


@dataclass
class Receipt:
    """What a mined transaction cost and emitted."""

    tx_hash: str
    block_number: int
    gas_used: int
    raw: dict


class ChainClient:
    """Contracts of one deployment on one JSON-RPC endpoint."""

    def __init__(
        self,
        url: str,
        deployment: str = "local",
        deployments_dir: Path = DEFAULT_DEPLOYMENTS_DIR,
        abi_dir: Path = DEFAULT_ABI_DIR,
    ) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        record_file = Path(deployments_dir) / f"{deployment}.json"
        if not record_file.exists():
            raise ChainError(f"no deployment record at {record_file}: run `ape run deploy` first")
        self.record = json.loads(record_file.read_text())
        chain_id = self.w3.eth.chain_id
        if self.record["chain_id"] != chain_id:
            raise ChainError(
                f"{record_file} is for chain {self.record['chain_id']}, "
                f"but {url} is chain {chain_id}"
            )
        self.contracts: dict[str, Contract] = {}
        for name, address in self.record["contracts"].items():
            abi = json.loads((Path(abi_dir) / f"{name}.json").read_text())
            self.contracts[name] = self.w3.eth.contract(address=address, abi=abi)

    def __getitem__(self, name: str) -> Contract:
        return self.contracts[name]

    def transact(self, account: LocalAccount, call, access_list: bool = False) -> Receipt:
        """Sign, send and mine ``call`` (a bound contract function) from ``account``.

        With ``access_list``, the transaction pre-declares the accounts and storage slots the
        call touches (EIP-2930), where that saves gas: worth it for a call that touches many
        cold contracts, such as a consensus commit.
        """
        try:
            tx = call.build_transaction(
                {
                    "from": account.address,
                    "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                    "chainId": self.w3.eth.chain_id,
                }
            )
            if access_list:
                listed = self.w3.eth.create_access_list(
                    {k: v for k, v in tx.items() if k not in ("gas", "nonce")}
                )
                entries = [
                    {"address": e["address"], "storageKeys": [_hex(k) for k in e["storageKeys"]]}
                    for e in listed["accessList"]
                ]
                tx["accessList"] = useful_entries(entries, account.address, tx["to"])
        except ContractLogicError as error:
            raise ChainError(f"{call.fn_name} reverted: {_reason(error)}") from error
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise ChainError(f"{call.fn_name} reverted in block {receipt['blockNumber']}")
        return Receipt(
            tx_hash=tx_hash.hex(),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            raw=dict(receipt),
        )


def _hex(key) -> str:
    return key if isinstance(key, str) else "0x" + bytes(key).hex()


def _reason(error: ContractLogicError) -> str:
    message = str(error.message if hasattr(error, "message") else error)
    return message.removeprefix("execution reverted: ")
