"""OpenBLAS's spinning threads are put to rest before our parallel calls (conv1dbench._threads)."""

import json
import threading

from conv1dbench import _threads
from conv1dbench.harness.runner import fresh_python

#: In a process of its own (its only Python thread): after a BLAS product, a claim of several
#: threads rests OpenBLAS's; the product after it starts them again and gives the same result.
CODE = """
import json, numpy as np
from conv1dbench import _threads
a = np.random.default_rng(0).standard_normal((300, 300))
before = a @ a
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
