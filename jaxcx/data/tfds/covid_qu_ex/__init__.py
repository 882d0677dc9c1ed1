"""TFDS builder for the COVID-QU-Ex chest X-ray folders (seed 004)."""

from jaxcx.data.tfds.covid_qu_ex.covid_qu_ex_dataset_builder import Builder

__all__ = ["Builder"]
