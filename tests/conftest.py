import os

import torch

# Tests run on the CPU with 2 threads (the size of the CI machine).
torch.set_num_threads(int(os.environ.get("SNN_TEST_THREADS", "2")))
