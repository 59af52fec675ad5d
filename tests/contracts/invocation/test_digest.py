"""InvocationDigest computes on-chain the digests the off-chain protocol signs and checks."""

import pytest
from eth_account import Account

from offchain.protocol.invocation import (
    InvocationDomain,
    InvocationRequest,
    Receipt,
    domain_separator,
    receipt_digest,
    request_digest,
    sign_request,
)

MAX_UINT256 = 2**256 - 1
MAX_UINT64 = 2**64 - 1
USER = Account.from_key(b"\x07" * 32)
ROUTER = Account.from_key(b"\x08" * 32)
OTHER_MARKET = "0x000000000000000000000000000000000000bEEF"

REQUESTS = [
    InvocationRequest(USER.address, 1, "matmul-f32", b"\x11" * 32, 10**15, 0, 1_900_000_000),
    InvocationRequest(USER.address, 0, "a", bytes(32), 0, 0, 0),
    InvocationRequest(
        "0x000000000000000000000000000000000000dEaD",
        MAX_UINT256,
        "x" * 32,
        b"\xff" * 32,
        MAX_UINT256,
        MAX_UINT256,
        MAX_UINT64,
    ),
    InvocationRequest(USER.address, 2**128 + 5, "conv2d/f16:v2", b"\x5a" * 32, 3, 2**70, 17),
]


@pytest.fixture(scope="module")
def invocation_digest(project, deployer, market):
    return deployer.deploy(project.InvocationDigest, market)


@pytest.fixture(scope="module")
def domain(chain, market):
    return InvocationDomain(chain_id=chain.chain_id, verifying_contract=market.address)


def _request_args(request: InvocationRequest) -> tuple:
    return (
        request.user,
        request.socket_id,
        request.workload,
        request.input_hash,
        request.max_price,
        request.nonce,
        request.deadline,
    )


def test_domain_separator__matches_python(invocation_digest, domain, market):
    assert invocation_digest.market() == market.address
    assert bytes(invocation_digest.domain_separator()) == domain_separator(domain)


@pytest.mark.parametrize("request_", REQUESTS, ids=range(len(REQUESTS)))
def test_request_digest__matches_python(invocation_digest, domain, request_):
    on_chain = bytes(invocation_digest.request_digest(*_request_args(request_)))
    assert on_chain == request_digest(request_, domain)


def test_request_digest__a_signature_made_off_chain_recovers_from_the_chain_digest(
    invocation_digest, domain
):
    request = REQUESTS[0]
    signature = sign_request(USER.key, request, domain)
    on_chain = bytes(invocation_digest.request_digest(*_request_args(request)))
    assert Account._recover_hash(on_chain, signature=signature) == USER.address


def test_request_digest__other_market__differs_and_matches_that_domain(
    project, deployer, invocation_digest, chain
):
    other = deployer.deploy(project.InvocationDigest, OTHER_MARKET)
    request = REQUESTS[0]
    here = bytes(invocation_digest.request_digest(*_request_args(request)))
    there = bytes(other.request_digest(*_request_args(request)))
    assert here != there
    assert there == request_digest(request, InvocationDomain(chain.chain_id, OTHER_MARKET))


@pytest.mark.parametrize("request_", REQUESTS[:2], ids=range(2))
def test_receipt_digest__matches_python(invocation_digest, domain, request_):
    receipt = Receipt(
        request_hash=request_digest(request_, domain),
        output_hash=b"\x22" * 32,
        units=request_.deadline % 1_000,
        price=request_.max_price,
        worker=USER.address,
        router=ROUTER.address,
    )
    on_chain = invocation_digest.receipt_digest(
        receipt.request_hash,
        receipt.output_hash,
        receipt.units,
        receipt.price,
        receipt.worker,
        receipt.router,
    )
    assert bytes(on_chain) == receipt_digest(receipt, domain)
