"""unet-scratch: a U-Net built by hand in NumPy, checked against Keras."""
__version__ = "0.1.0"
