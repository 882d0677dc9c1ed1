"""`covid_qu_ex`: COVID-QU-Ex chest X-rays, COVID-19 / Non-COVID / Normal (256x256 PNG)."""

from __future__ import annotations

from jaxcx.data.folder import COVID_QU_EX_CLASSES
from jaxcx.data.tfds.image_folder import ImageFolderBuilder


class Builder(ImageFolderBuilder):
    """Reads `{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/images/*.png` (masks ignored)."""

    name = "covid_qu_ex"
    CLASS_MAP = COVID_QU_EX_CLASSES
    SPLIT_FOLDERS = {"Train": "train", "Val": "val", "Test": "test"}
    IMAGES_SUBDIR = "images"
    DESCRIPTION = (
        "COVID-QU-Ex (Tahir et al., Qatar University; Kaggle doi 10.34740/kaggle/dsv/3122958). "
        "Labels: COVID-19=0, Non-COVID=1, Normal=2."
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download the COVID-QU-Ex dataset from Kaggle (doi 10.34740/kaggle/dsv/3122958) and
    point the manual directory at the folder that holds `Train/`, `Val/` and `Test/`
    (e.g. `Lung Segmentation Data/Lung Segmentation Data`), each with `COVID-19/`,
    `Non-COVID/` and `Normal/` subfolders that contain `images/*.png`.
    """
