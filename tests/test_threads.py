"""Thread limits (nclib.threads): applied, restored, and the environment left alone."""

import os

import pytest
import torch
from threadpoolctl import threadpool_info

from nclib.threads import limit_threads, single_thread


def pool_threads() -> list:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_limits_are_restored_and_environment_untouched():
    environment, torch_threads, pools = dict(os.environ), torch.get_num_threads(), pool_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
        assert set(pool_threads()) <= {1}
    assert torch.get_num_threads() == torch_threads and pool_threads() == pools
    limiter = limit_threads(1)
    assert torch.get_num_threads() == 1
    limiter.restore_original_limits()
    assert torch.get_num_threads() == torch_threads and pool_threads() == pools
    assert dict(os.environ) == environment


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="positive integer"):
        limit_threads(bad)
