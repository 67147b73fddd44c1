import os

import pytest
import torch

# Tests run on the CPU with 2 threads (the size of the CI machine).
torch.set_num_threads(int(os.environ.get("SNN_TEST_THREADS", "2")))


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (fastest for small tensors, steady on a loaded machine), then restore."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
