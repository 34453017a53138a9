"""nnsim: learn how neural networks classify images, in the terminal, on a real engine."""

__version__ = "0.1.0"
