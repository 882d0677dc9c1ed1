"""TFDS builder for the Kaggle chest X-ray pneumonia folders (the pneumonia notebook's data)."""

from jaxcx.data.tfds.chest_xray_pneumonia.chest_xray_pneumonia_dataset_builder import Builder

__all__ = ["Builder"]
