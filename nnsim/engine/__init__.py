"""The engine: backends (kernels), layers, losses, optimizers, models and the trainer."""
