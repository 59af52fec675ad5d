"""The router's request metrics: what a scrape reads matches the agent's own state."""

from offchain.routers.agent import RouterAgent
from offchain.routers.config import RouterConfig


def test_in_flight_gauge__read_from_the_router_at_scrape_time():
    router = RouterAgent(RouterConfig())
    registry = router.metrics.registry
    assert registry.get_sample_value("emc_router_in_flight") == 0
    router.in_flight = 3
    assert registry.get_sample_value("emc_router_in_flight") == 3
    router.in_flight = 0
    assert registry.get_sample_value("emc_router_in_flight") == 0


def test_answered_ok__counted_under_the_ok_outcome():
    router = RouterAgent(RouterConfig())
    router._answered_ok.inc()
    router._answered_ok.inc()
    sample = router.metrics.registry.get_sample_value
    assert sample("emc_router_requests_total", {"outcome": "ok"}) == 2
