"""TFDS builders (ArrayRecord, no TensorFlow) give the same examples as the folder source."""

import numpy as np

from jaxcx.data import pipeline
from jaxcx.data.folder import COVID_QU_EX_CLASSES, KAGGLE_PNEUMONIA_CLASSES, image_folder_source
from jaxcx.data.synthetic import write_phantom_chest_xrays
from jaxcx.data.tfds import chest_xray_pneumonia, covid_qu_ex
from jaxcx.data.tfds.image_folder import load_split
from jaxcx.data.transforms import standard_transforms


def by_id(source):
    return {record["id"]: record for record in (source[i] for i in range(len(source)))}


def test_chest_xray_builder_matches_folder_source(tmp_path):
    manual = tmp_path / "manual"
    write_phantom_chest_xrays(manual, 20, seed=0, size_range=(20, 40), rgb_fraction=0.3,
                              png16_fraction=0.2, split_fractions=(0.6, 0.2, 0.2))
    built = load_split(chest_xray_pneumonia.Builder, "train", manual_dir=manual,
                       data_dir=tmp_path / "tfds")
    folder = image_folder_source(manual, "train", class_map=KAGGLE_PNEUMONIA_CLASSES)
    assert built.class_names == ["NORMAL", "PNEUMONIA"]
    assert sorted(built.labels.tolist()) == sorted(folder.labels.tolist())
    built_records, folder_records = by_id(built), by_id(folder)
    assert built_records.keys() == folder_records.keys()
    channels = set()
    for key, record in built_records.items():
        expected = folder_records[key]
        assert record["label"] == expected["label"]
        assert record["image"].dtype == expected["image"].dtype
        np.testing.assert_array_equal(record["image"], expected["image"])
        channels.add(record["image"].shape[-1])
    assert channels == {1, 3}  # bytes copied as-is: RGB files stay RGB

    chain = standard_transforms(image_size=16, channels=1)
    from_tfds = list(pipeline.eval_loader(built, batch_size=4, transforms=chain, keep_ids=True))
    from_folder = list(pipeline.eval_loader(folder, batch_size=4, transforms=chain,
                                            keep_ids=True))
    images = lambda batches: {i: x for b in batches for i, x, m in  # noqa: E731
                              zip(b["id"], b["image"], b["mask"]) if m}
    tfds_images, folder_images = images(from_tfds), images(from_folder)
    assert tfds_images.keys() == folder_images.keys()
    for key, image in tfds_images.items():
        assert image.shape == (16, 16, 1)
        np.testing.assert_array_equal(image, folder_images[key])


def test_covid_builder_reads_images_not_masks(tmp_path):
    manual = tmp_path / "covid"
    write_phantom_chest_xrays(manual, 9, seed=1, layout="covid", size_range=(16, 24),
                              split_fractions=(0.34, 0.33, 0.33), masks=True)
    built = load_split(covid_qu_ex.Builder, "val", manual_dir=manual, data_dir=tmp_path / "tfds")
    folder = image_folder_source(manual, "Val", class_map=COVID_QU_EX_CLASSES)
    assert len(built) == len(folder) == 3
    assert built.class_names == ["COVID-19", "Non-COVID", "Normal"]
    assert all("/images/" in record_id for record_id in by_id(built))
    assert sorted(built.labels.tolist()) == sorted(folder.labels.tolist())
