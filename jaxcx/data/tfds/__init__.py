"""TensorFlow Datasets builders (no TensorFlow needed) for the image-folder datasets.

Each builder lives in its own package directory, reads the images from the manual
directory, writes ArrayRecord files and is read back with `as_data_source()` into grain;
see `jaxcx.data.tfds.image_folder` for the shared machinery.
"""
