"""`chest_xray_pneumonia`: Kermany et al. 2018 pediatric chest X-rays, NORMAL vs PNEUMONIA."""

from __future__ import annotations

from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES
from jaxcx.data.tfds.image_folder import ImageFolderBuilder


class Builder(ImageFolderBuilder):
    """Reads `{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg` from the manual directory."""

    name = "chest_xray_pneumonia"
    CLASS_MAP = KAGGLE_PNEUMONIA_CLASSES
    SPLIT_FOLDERS = {"train": "train", "val": "val", "test": "test"}
    IMAGES_SUBDIR = None
    DESCRIPTION = (
        "Chest X-Ray Images (Pneumonia): Kermany, Zhang, Goldbaum et al., Cell 2018; "
        "Mendeley Data v2, CC BY 4.0. Labels: NORMAL=0, PNEUMONIA=1."
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download `paultimothymooney/chest-xray-pneumonia` from Kaggle (or the Mendeley Data
    "Labeled OCT and Chest X-Ray Images" v2) and point the manual directory at the folder
    that holds `train/`, `test/` (and optionally `val/`), each with `NORMAL/` and
    `PNEUMONIA/` subfolders of JPEG files.
    """
