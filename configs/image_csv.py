"""Your own labelled images: a folder with a label CSV (e.g. `metadata.csv` with a file
column and a class column), split per class into train/val/test.

    python -m experiments.train --config=configs/image_csv.py \
        --config.data.csv=FOLDER/metadata.csv --config.data.path_column=file \
        --config.data.label_column=finding --config.data.encoding=latin-1 \
        --config.model.num_classes=3 --workdir=runs/mine

`model.num_classes` must equal the number of classes (the distinct labels, or
`data.class_names`). The model is the pneumonia notebook's FlexModel CNN at 64 px.
"""

from jaxcx.config import base_config, parse_arg


def get_config(arg=None):
    config = base_config()
    config.name = "image_csv"
    config.data = {
        "name": "image_csv", "csv": "", "root": "", "path_column": "file",
        "label_column": "label", "encoding": "utf-8", "class_names": (),
        "val_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0, "min_per_class": 5,
        "image_size": 64, "channels": 1, "resize_mode": "stretch", "normalization": "standardize",
        "on_bad_input": "raise", "cache_dir": "",
        "augment": {"enabled": False, "p": 0.2, "rotation_degrees": 5.0,
                    "translate_fraction": 0.05, "shear_degrees": 5.0, "brightness": 0.2,
                    "contrast": 0.1, "hflip": False},
    }
    config.model = {"name": "flex_cnn", "num_classes": 2, "feature_maps": 16, "kernel_size": 3,
                    "activation": "relu", "regularisation": False, "dropout_rate": 0.5,
                    "batch_norm_momentum": 0.9}
    config.optim.name = "adam"
    config.train.num_epochs = 10
    config.train.batch_size = 32
    config.train.eval_batch_size = 64
    return parse_arg(arg, {}, config)
