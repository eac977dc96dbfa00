"""Thread limits for the numerical libraries, set explicitly and undone on request.

The analyses run many small matrix products (N of a few thousand, D of a few hundred),
for which one thread is as fast as several; and on a machine whose cores are busy,
multi-threaded OpenBLAS can slow such products down by orders of magnitude (threads
wait for each other while descheduled). Timings, too, are steadier and comparable
across scores with one thread.

Both helpers limit the BLAS / OpenMP pools through :func:`threadpoolctl.threadpool_limits`
and torch's intra-op pool through :func:`torch.set_num_threads`, and restore both
afterwards. Neither touches ``os.environ``; nothing in nclib calls them on import.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


class ThreadLimits:
    """Thread limits in force from construction until :meth:`restore_original_limits`.

    Returned by :func:`limit_threads`; also a context manager that restores the
    previous limits on exit.

    Parameters
    ----------
    num_threads : int
        Threads for every BLAS / OpenMP pool loaded so far and for torch, >= 1.

    Examples
    --------
    >>> with ThreadLimits(1):
    ...     pass
    """

    def __init__(self, num_threads: int = 1):
        if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
        import scipy.linalg  # noqa: F401  (load scipy's BLAS now, so that it is limited too)
        import torch
        from threadpoolctl import threadpool_limits

        self.num_threads = int(num_threads)
        self._torch = torch
        self._torch_threads = torch.get_num_threads()
        self._pools = threadpool_limits(limits=self.num_threads)
        torch.set_num_threads(self.num_threads)

    def restore_original_limits(self) -> None:
        """Give every pool back the number of threads it had before."""
        self._pools.restore_original_limits()
        self._torch.set_num_threads(self._torch_threads)

    def __enter__(self) -> "ThreadLimits":
        return self

    def __exit__(self, *exc_info) -> None:
        self.restore_original_limits()


def limit_threads(num_threads: int = 1) -> ThreadLimits:
    """Limit the BLAS / OpenMP thread pools and torch's intra-op pool.

    The limits hold until ``restore_original_limits()`` is called on the result, or
    until the end of a ``with`` block. The book's analysis chapters call it once,
    explicitly. Only libraries already loaded are limited (numpy's and scipy's BLAS are
    loaded first; a library loaded later, such as scikit-learn's OpenMP runtime, keeps
    its own default); the environment is left alone.

    Parameters
    ----------
    num_threads : int

    Returns
    -------
    ThreadLimits

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> limiter = limit_threads(1)
    >>> torch.get_num_threads()
    1
    >>> limiter.restore_original_limits()
    >>> torch.get_num_threads() == before
    True
    >>> with limit_threads(1):
    ...     torch.get_num_threads()
    1
    """
    return ThreadLimits(num_threads)


@contextmanager
def single_thread():
    """Run the enclosed block with one BLAS / OpenMP thread and one torch thread.

    Timings on a shared machine are steadier and comparable across scores this way;
    the previous settings are restored on exit.

    Examples
    --------
    >>> import torch
    >>> with single_thread():
    ...     torch.get_num_threads()
    1
    """
    with ThreadLimits(1):
        yield


__all__ = ["ThreadLimits", "limit_threads", "single_thread"]
