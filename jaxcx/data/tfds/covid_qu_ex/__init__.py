"""TFDS builder for the COVID-QU-Ex chest X-ray folders (the COVID notebook's data)."""

from jaxcx.data.tfds.covid_qu_ex.covid_qu_ex_dataset_builder import Builder

__all__ = ["Builder"]
