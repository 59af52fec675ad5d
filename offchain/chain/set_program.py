"""The program at the start of every validator-set data contract, assembled from its listing.

`contracts/modules/validator_set.vy` deploys each epoch's set as contract code: this program,
then the set's data (header, then one 160-byte entry per member; the module's docstring gives
the layout). ComputeConsensus calls the data contract with a signer bitmap (one word of
calldata) and the program answers, in 224 bytes:

    [0, 128)    the signers' aggregate key: the stored aggregate of all members plus the stored
                negated key of every non-signer (one G1ADD each, EIP-2537)
    [128, 160)  the total power (as stored)
    [160, 192)  the member count n (as stored)
    [192, 224)  the non-signers' summed power

Only the non-signers cost anything: it walks the set bits of ~bitmap & (2**n - 1), finding
each one's index with a de Bruijn multiplication and a 128-byte table, copies the entry out of
its own code (CODECOPY, no account access) next to the running aggregate and adds it in place.
Bits at or above n are ignored; the caller checks that the bitmap fits the set. A call with
value, or a G1ADD that fails, reverts. It reads no state and writes none.

Vyper has no inline assembly, and the same loop in Vyper cost about 1,400 gas per non-signer
(copies, bounds checks and an EXTCODESIZE and EXTCODECOPY per entry) against about 660 here,
and 70 per member for scanning the bitmap seat by seat against nothing here. The contract
constant `SET_PROGRAM` must equal `code()`: tests/contracts/consensus/test_set_program.py
checks it and runs the program against a Python reference.

    .venv/bin/python -m offchain.chain.set_program    # prints the Vyper constant
"""

# The de Bruijn sequence B(2, 7) as a 128-bit number: for i < 128, the top 7 of the low 128 bits
# of (2**i * DE_BRUIJN) are distinct, so they index a table of the 128 bit positions.
DE_BRUIJN = 0x01061438916347932A5CD9D3EAD7B77F
G1ADD = 0x0B
G1ADD_GAS = 5_000
HEADER_SIZE = 192
ENTRY_SIZE = 160
RESULT_SIZE = 224

# Memory: [0, 128) the running aggregate, [128, 288) the entry being added (its key completes
# the G1ADD input [0, 256), its power|address word is [256, 288)), [288, 320) the table byte.
ENTRY_AT = 128
POWER_WORD_AT = 256
INDEX_WORD_AT = 288

_OPCODES = {
    "ADD": 0x01, "MUL": 0x02, "SUB": 0x03, "ISZERO": 0x15, "AND": 0x16, "XOR": 0x18,
    "NOT": 0x19, "SHL": 0x1B, "SHR": 0x1C, "CALLVALUE": 0x34, "CALLDATALOAD": 0x35,
    "CODECOPY": 0x39, "POP": 0x50, "MLOAD": 0x51, "MSTORE": 0x52, "JUMPI": 0x57,
    "JUMPDEST": 0x5B, "PUSH0": 0x5F, "DUP1": 0x80, "DUP2": 0x81, "DUP3": 0x82, "SWAP1": 0x90,
    "SWAP2": 0x91, "RETURN": 0xF3, "STATICCALL": 0xFA, "REVERT": 0xFD,
}  # fmt: skip

# (instruction, stack after it, top first). "PUSHn x" pushes x in n bytes, where x is a number
# or a name: DATA (where the set's data starts: the program's own size), TABLE, or a label.
# "label:" marks the next instruction's offset.
LISTING: list[tuple[str, str]] = [
    ("CALLVALUE", "value"),
    ("PUSH2 revert", "revert, value"),
    ("JUMPI", "(empty)"),
    ("PUSH1 192", "192"),
    ("PUSH2 DATA", "DATA, 192"),
    ("PUSH0", "0, DATA, 192"),
    ("CODECOPY", "(empty); mem[0, 192) = aggregate, total, n"),
    ("PUSH0", "0"),
    ("CALLDATALOAD", "bitmap"),
    ("PUSH1 1", "1, bitmap"),
    ("PUSH1 160", "160, 1, bitmap"),
    ("MLOAD", "n, 1, bitmap"),
    ("SHL", "2**n, bitmap"),
    ("PUSH1 1", "1, 2**n, bitmap"),
    ("SWAP1", "2**n, 1, bitmap"),
    ("SUB", "2**n - 1, bitmap"),
    ("SWAP1", "bitmap, 2**n - 1"),
    ("NOT", "~bitmap, 2**n - 1"),
    ("AND", "missing"),
    ("PUSH0", "0, missing"),
    ("SWAP1", "missing, sum"),
    ("loop:", ""),
    ("JUMPDEST", "missing, sum"),
    ("DUP1", "missing, missing, sum"),
    ("ISZERO", "missing == 0, missing, sum"),
    ("PUSH2 done", "done, missing == 0, missing, sum"),
    ("JUMPI", "missing, sum"),
    ("DUP1", "missing, missing, sum"),
    ("DUP1", "missing, missing, missing, sum"),
    ("PUSH0", "0, missing, missing, missing, sum"),
    ("SUB", "-missing, missing, missing, sum"),
    ("AND", "low (the lowest set bit), missing, sum"),
    ("SWAP1", "missing, low, sum"),
    ("DUP2", "low, missing, low, sum"),
    ("XOR", "missing without low, low, sum"),
    ("SWAP1", "low, missing, sum"),
    (f"PUSH16 {DE_BRUIJN}", "DE_BRUIJN, low, missing, sum"),
    ("MUL", "low * DE_BRUIJN, missing, sum"),
    ("PUSH1 128", "128, low * DE_BRUIJN, missing, sum"),
    ("SHL", "(low * DE_BRUIJN) << 128, missing, sum"),
    ("PUSH1 249", "249, (low * DE_BRUIJN) << 128, missing, sum"),
    ("SHR", "k (top 7 of the low 128 bits), missing, sum"),
    ("PUSH2 TABLE", "TABLE, k, missing, sum"),
    ("ADD", "TABLE + k, missing, sum"),
    ("PUSH1 1", "1, TABLE + k, missing, sum"),
    ("SWAP1", "TABLE + k, 1, missing, sum"),
    (f"PUSH2 {INDEX_WORD_AT + 31}", "319, TABLE + k, 1, missing, sum"),
    ("CODECOPY", "missing, sum; mem[319] = index (nothing else writes [288, 319))"),
    (f"PUSH2 {INDEX_WORD_AT}", "288, missing, sum"),
    ("MLOAD", "index, missing, sum"),
    (f"PUSH1 {ENTRY_SIZE}", "160, index, missing, sum"),
    ("MUL", "160 * index, missing, sum"),
    (f"PUSH2 DATA + {HEADER_SIZE}", "DATA + 192, 160 * index, missing, sum"),
    ("ADD", "entry, missing, sum"),
    (f"PUSH1 {ENTRY_SIZE}", "160, entry, missing, sum"),
    ("SWAP1", "entry, 160, missing, sum"),
    (f"PUSH1 {ENTRY_AT}", "128, entry, 160, missing, sum"),
    ("CODECOPY", "missing, sum; mem[128, 288) = negated key, power|address"),
    (f"PUSH2 {POWER_WORD_AT}", "256, missing, sum"),
    ("MLOAD", "power|address, missing, sum"),
    ("PUSH1 160", "160, power|address, missing, sum"),
    ("SHR", "power, missing, sum"),
    ("DUP3", "sum, power, missing, sum"),
    ("ADD", "sum + power, missing, sum"),
    ("SWAP2", "sum, missing, sum + power"),
    ("POP", "missing, sum"),
    ("PUSH1 128", "128 (out size), missing, sum"),
    ("PUSH0", "0 (out at), 128, missing, sum"),
    ("PUSH2 256", "256 (in size), 0, 128, missing, sum"),
    ("PUSH0", "0 (in at), 256, 0, 128, missing, sum"),
    (f"PUSH1 {G1ADD}", "G1ADD, 0, 256, 0, 128, missing, sum"),
    (f"PUSH2 {G1ADD_GAS}", "gas, G1ADD, 0, 256, 0, 128, missing, sum"),
    ("STATICCALL", "ok, missing, sum (mem[0, 128) = aggregate + key)"),
    ("PUSH2 loop", "loop, ok, missing, sum"),
    ("JUMPI", "missing, sum"),
    ("revert:", ""),
    ("JUMPDEST", ""),
    ("PUSH0", "0"),
    ("PUSH0", "0, 0"),
    ("REVERT", ""),
    ("done:", ""),
    ("JUMPDEST", "0, sum"),
    ("POP", "sum"),
    ("PUSH1 192", "192, sum"),
    ("MSTORE", "(empty); mem[192, 224) = sum"),
    ("PUSH1 64", "64"),
    ("PUSH2 DATA + 128", "DATA + 128, 64"),
    ("PUSH1 128", "128, DATA + 128, 64"),
    ("CODECOPY", "(empty); mem[128, 192) = total, n, which entries overwrote"),
    (f"PUSH1 {RESULT_SIZE}", "224"),
    ("PUSH0", "0, 224"),
    ("RETURN", ""),
]


def table() -> bytes:
    """Return the 128-byte table: at k, the bit position i whose de Bruijn product gives k."""
    positions = bytearray(128)
    for i in range(128):
        positions[(((1 << i) * DE_BRUIJN) % 2**128) >> 121] = i
    return bytes(positions)


def _assemble(names: dict[str, int]) -> tuple[bytes, dict[str, int]]:
    code = bytearray()
    labels: dict[str, int] = {}
    for instruction, _ in LISTING:
        if instruction.endswith(":"):
            labels[instruction[:-1]] = len(code)
            continue
        op, _, operand = instruction.partition(" ")
        if op.startswith("PUSH") and op != "PUSH0":
            size = int(op[4:])
            terms = operand.split(" + ")
            value = sum(int(term) if term.isdigit() else names[term] for term in terms)
            assert 0 <= value < 1 << (8 * size), instruction
            code += bytes([0x5F + size]) + value.to_bytes(size, "big")
        else:
            code.append(_OPCODES[op])
    labels["TABLE"] = len(code)
    code += table()
    return bytes(code), labels


def code() -> bytes:
    """Return the assembled program: its instructions, then the table. The set's data follows."""
    # Offsets are pushed with fixed widths, so a first pass with placeholders fixes every offset.
    first, labels = _assemble({"DATA": 0, "TABLE": 0, "loop": 0, "done": 0, "revert": 0})
    final, _ = _assemble({"DATA": len(first), **labels})
    assert len(final) == len(first)
    return final


def main() -> None:
    """Print the program as the Vyper constant of `contracts/modules/validator_set.vy`."""
    program = code()
    print(f'SET_PROGRAM: constant(Bytes[{len(program)}]) = x"{program.hex()}"')


if __name__ == "__main__":
    main()
