"""Which entries of an EIP-2930 access list pay for themselves.

A listed address costs 2,400 gas up front and a listed storage key 1,900, where the first touch
of an unlisted one costs 2,600 and 2,100: each entry that the transaction touches saves 100 gas.
But the sender, the recipient and the precompiles are warm from the start, so listing them costs
2,400 and saves nothing; their keys alone save 100 each, which pays back the address entry only
past 24 keys. `eth_createAccessList` lists whatever the call touched, so this keeps only the
entries that save gas.
"""

# Precompiles live at the lowest addresses (0x01-0x11 on Prague, 0x100 for P-256); everything up
# to 0x1ff is treated as one.
_HIGHEST_PRECOMPILE = 0x1FF
_KEYS_TO_PAY_FOR_A_WARM_ADDRESS = 24


def useful_entries(entries: list[dict], sender: str, to: str) -> list[dict]:
    """Return the entries of ``entries`` (as eth_createAccessList returns them) worth listing."""
    warm = {sender.lower(), to.lower()}
    kept = []
    for entry in entries:
        address = entry["address"]
        keys = list(entry.get("storageKeys", []))
        if int(address, 16) <= _HIGHEST_PRECOMPILE:
            continue
        if address.lower() in warm and len(keys) <= _KEYS_TO_PAY_FOR_A_WARM_ADDRESS:
            continue
        kept.append({"address": address, "storageKeys": keys})
    return kept
