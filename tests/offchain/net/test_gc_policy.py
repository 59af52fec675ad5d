import gc

from offchain.runtime.gc_policy import THRESHOLDS, ChurnCollector, tune_process


def test_churn_collector__due_after_a_quarter_of_connections_ended_or_the_floor():
    collector = ChurnCollector(last_full=0.0, min_ended=256, fraction=0.25, max_interval_s=120)
    collector.note_ended(255)
    assert not collector.due(held=100, now=1.0)  # the floor: 256 ended, however few are held
    collector.note_ended()
    assert collector.due(held=100, now=1.0)
    assert not collector.due(held=2_000, now=1.0)  # a quarter of 2,000 is 500
    collector.note_ended(244)
    assert collector.due(held=2_000, now=1.0)


def test_churn_collector__due_after_max_interval__counts_restart_when_collected():
    collector = ChurnCollector(last_full=10.0, max_interval_s=120)
    assert not collector.due(held=0, now=129.9)
    assert collector.due(held=0, now=130.0)
    collector.note_ended(300)
    collector.collected(now=130.0)
    assert collector.ended == 0 and collector.last_full == 130.0
    assert not collector.due(held=0, now=131.0)


def test_tune_process__raises_the_young_threshold_only():
    before = gc.get_threshold()
    try:
        tune_process()
        assert gc.get_threshold() == THRESHOLDS
        assert THRESHOLDS[0] > before[0] and THRESHOLDS[1:] == (10, 10)
    finally:
        gc.set_threshold(*before)
