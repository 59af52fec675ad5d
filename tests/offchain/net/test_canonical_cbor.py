"""The fast canonical encoder writes exactly what cbor2's canonical mode writes."""

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.protocol import canonical_cbor

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=300)
    | st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=30), inner, max_size=6)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_same_bytes_as_cbor2_canonical(value: object) -> None:
    assert canonical_cbor.dumps(value) == cbor2.dumps(value, canonical=True)


@pytest.mark.parametrize(
    "n",
    [0, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**64 - 1],
)
def test_heads_at_every_width_boundary(n: int) -> None:
    assert canonical_cbor.dumps(n) == cbor2.dumps(n, canonical=True)
    assert canonical_cbor.dumps(-1 - n) == cbor2.dumps(-1 - n, canonical=True)
    assert canonical_cbor.dumps(b"x" * min(n, 70_000)) == cbor2.dumps(
        b"x" * min(n, 70_000), canonical=True
    )


def test_keys_shorter_first_then_bytewise() -> None:
    value = {"bb": 1, "a": 2, "ab": 3, "b": 4, "": 5}
    encoded = canonical_cbor.dumps(value)
    assert encoded == cbor2.dumps(value, canonical=True)
    assert list(cbor2.loads(encoded)) == ["", "a", "b", "ab", "bb"]


def test_key_order_cache_is_bounded() -> None:
    for i in range(canonical_cbor._CACHE_CAP * 2):
        canonical_cbor.dumps({f"k{i}": i})
    assert len(canonical_cbor._key_orders) <= canonical_cbor._CACHE_CAP
