"""Data layer: random-access sources, transforms and grain pipelines."""
