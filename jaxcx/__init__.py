"""jaxcx: functional JAX/Flax research code for medical and small-image deep learning."""

__version__ = "0.1.0"
