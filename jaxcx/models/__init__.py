"""Linen models, their registry (`build_model`, `register`) and `summary(model, input_shape)`."""

from jaxcx.models.cnn import ChestCNN, FlexCNN, GridCNN, MnistCNN
from jaxcx.models.densenet import DenseNet
from jaxcx.models.mlp import MLP, MLPAutoencoder, MLPEncoderClassifier, covid_mlp, xor_mlp
from jaxcx.models.registry import available_models, build_model, model_fields, register
from jaxcx.models.resnet import ResNet
from jaxcx.models.summary import ModelSummary, summary

__all__ = [
    "ChestCNN",
    "MLP",
    "DenseNet",
    "FlexCNN",
    "GridCNN",
    "MLPAutoencoder",
    "MLPEncoderClassifier",
    "ModelSummary",
    "MnistCNN",
    "ResNet",
    "available_models",
    "build_model",
    "covid_mlp",
    "model_fields",
    "register",
    "summary",
    "xor_mlp",
]
