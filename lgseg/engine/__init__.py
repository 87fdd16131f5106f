"""Training and inference: the loop, its hooks, checkpoints, optimisers and distributed set-up."""
