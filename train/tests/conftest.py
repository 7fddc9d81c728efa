import torch

# Keep the suite fast and polite on shared CI machines.
torch.set_num_threads(1)
