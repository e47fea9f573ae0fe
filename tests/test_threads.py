"""OpenBLAS's spinning threads are put to rest before our parallel calls, and independent pieces of
work are spread over helper threads (conv1dbench._threads)."""

import json
import threading
import time

import numpy as np
import pytest

from conv1dbench import _threads
from conv1dbench.harness.runner import fresh_python

#: In a process of its own (its only Python thread): after a BLAS product, a claim of several
#: threads rests OpenBLAS's; the product after it starts them again and gives the same result.
CODE = """
import json, numpy as np
from conv1dbench import _threads
a = np.random.default_rng(0).standard_normal((300, 300))
before = a @ a
_threads.fan_out(lambda job: None, range(4), 2)   # helper threads alive: ours, they run no BLAS work
with _threads.claim(2) as granted:
    rested = _threads.rest_blas_threads()
after = a @ a
print(json.dumps({"granted": granted, "rested": rested, "found": len(_threads._blas_shutdowns()),
                  "same": bool((before == after).all())}))
"""


def test_a_claim_rests_openblas_threads_and_blas_still_works():
    done = fresh_python(CODE)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["granted"] == 2 and result["same"]
    assert result["rested"] == (result["found"] > 0)


def test_no_rest_while_other_python_threads_run():
    """OpenBLAS's shutdown must never meet a product on another thread: with two threads, nothing is done."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert _threads.rest_blas_threads() is False
    finally:
        stop.set()
        other.join()


def test_fan_out_runs_every_job_once_on_several_threads():
    seen, lock = [], threading.Lock()

    def run(job):
        time.sleep(0.002)   # releases the GIL, as the FFT steps do
        with lock:
            seen.append((job, threading.get_ident()))

    _threads.fan_out(run, range(20), 2)
    assert sorted(job for job, _ in seen) == list(range(20))
    assert len({ident for _, ident in seen}) == 2
    seen.clear()
    _threads.fan_out(run, range(5), 1)   # one thread: in turn, on this one
    assert [job for job, _ in seen] == list(range(5))
    assert {ident for _, ident in seen} == {threading.get_ident()}


def test_fan_out_raises_a_jobs_error_after_every_thread_stopped():
    started = []

    def run(job):
        started.append(job)
        time.sleep(0.001)
        if job == 3:
            raise ValueError("job 3")

    with pytest.raises(ValueError, match="job 3"):
        _threads.fan_out(run, range(50), 2)
    assert len(started) < 50   # no job is taken after the error
    count = len(started)
    time.sleep(0.01)
    assert len(started) == count   # and no helper is still running one


def test_the_numba_backend_counts_the_work_it_does_when_it_decides_on_threads(monkeypatch):
    """A call smaller than ``numba.parallel_min_macs`` runs on one thread. "valid" with a kernel nearly as
    long as the signal is such a call: N = 1023, K = 1000 has 24 outputs, 24 K multiply-adds, not 1 M."""
    import numba

    from conv1dbench import _params
    from conv1dbench._backends import numba as nb

    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    with _params.overriding(numba__parallel_min_macs=1 << 19):
        assert nb.threads_1d(1023, 1000) == 1                        # valid: 24 outputs
        assert nb.threads_1d(1023, 1000, 999, 999) == 2              # full: every sample meets every tap
        assert nb.threads_1d(10**5, 3, 1, 1) == 1 and nb.threads_1d(10**6, 3, 1, 1) == 2
        x, w = np.zeros((1, 1, 1023)), np.zeros((1, 1, 1000))
        assert nb._threads(x, w, 24) == 1 and nb._threads(x, w) == 2
