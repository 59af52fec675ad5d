import pytest

from offchain.workers import pool_train
from offchain.workers.workload_errors import InvalidInput


def test_train__two_gloo_processes__same_losses_as_one_process():
    cfg = pool_train.TrainConfig()
    single = pool_train.train(0, 1, cfg)
    pooled = pool_train.train_local(2, cfg)
    assert len(pooled) == cfg.steps
    assert pooled == pytest.approx(single, rel=1e-5)
    assert pooled[-1] < 0.7 * pooled[0]


def test_train__batch_not_divisible__refused():
    with pytest.raises(InvalidInput, match="evenly"):
        pool_train.train(0, 3, pool_train.TrainConfig(global_batch=64))
