"""one_thread_lapack: small LAPACK calls run on one BLAS thread, and the threads come back."""
from threadpoolctl import threadpool_info

from randla._linalg import one_thread_lapack


def _blas_threads():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_small_calls_run_on_one_thread_and_the_threads_come_back():
    before = _blas_threads()
    with one_thread_lapack(120):
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before
    with one_thread_lapack(2000):          # a large call keeps every thread
        assert _blas_threads() == before
