"""MLP heads on top of pooled encoder features: projections, predictors and expanders.

All four heads are one shape, ``Linear`` layers with optional ``BatchNorm1d`` and ``ReLU`` between,
built by :func:`mlp`; the classes only fix the sizes and the attribute name of the ``Sequential`` so
that the original checkpoints' head weights load by key:

* :class:`ProjectionHead` (xID, AVID §3A.1 / AV-SSRL §3B.2): Linear–ReLU–Linear–ReLU–Linear,
  [512, 512, 128]; keys ``projection.{0,2,4}``;
* :class:`Expander` (VICReg, §3B.2): (Linear–BN–ReLU)×2–Linear, [4096]×3; keys
  ``expansion.{0,1,3,4,6}``;
* :class:`SimSiamProjector` (CrissCross §2.4): (Linear–BN–ReLU)×(n−1)–Linear–BN, 2048 wide;
* :class:`SimSiamPredictor` (CrissCross §2.4): Linear–BN–ReLU–Linear, 2048→512→2048.

Input ``[B, in_dim]``, output ``[B, out_dim]``. CrissCross released only backbones, so its head key
names are ours.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["mlp", "ProjectionHead", "Expander", "SimSiamProjector", "SimSiamPredictor"]


def mlp(
    in_dim: int,
    dims: Sequence[int],
    hidden_batchnorm: bool,
    output_batchnorm: bool = False,
) -> nn.Sequential:
    """``Linear`` layers to each size in ``dims`` with ``[BatchNorm1d] + ReLU`` after every hidden one.

    Args:
        in_dim: input feature size.
        dims: output size of each ``Linear``; the last is the head's output size.
        hidden_batchnorm: put ``BatchNorm1d`` between each hidden ``Linear`` and its ``ReLU``.
        output_batchnorm: end with a ``BatchNorm1d`` after the last ``Linear`` (SimSiam projector).

    The ``Sequential`` indices follow the layer order, which is what the official key names
    (``projection.4.weight``, ``expansion.6.weight``) encode.
    """
    if in_dim < 1 or not dims or any(d < 1 for d in dims):
        raise ValueError(
            f"mlp: sizes must be positive and dims non-empty, got in_dim={in_dim}, dims={list(dims)}"
        )
    layers: list[nn.Module] = []
    sizes = [in_dim, *dims]
    for position, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if position < len(dims) - 1:
            if hidden_batchnorm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(nn.ReLU(inplace=True))
        elif output_batchnorm:
            layers.append(nn.BatchNorm1d(fan_out))
    return nn.Sequential(*layers)


def _check_features(x: Tensor, in_dim: int, head: str) -> None:
    if x.ndim != 2 or x.shape[1] != in_dim:
        raise ValueError(f"{head}: expected features [B, {in_dim}], got shape {tuple(x.shape)}")


class ProjectionHead(nn.Module):
    """xID projection (AVID-CMA ``av_wrapper``, AV-SSRL ``ProjectionHead``; spec §3A.1, §3B.2).

    Args:
        in_dim: encoder feature size (512 for the R(2+1)D-18 / Conv2D-10 encoders).
        dims: layer sizes, ``(512, 512, 128)`` in both originals (590,976 parameters from 512).

    ``[B, in_dim] -> [B, dims[-1]]``; not normalised (the xID loss L2-normalises).
    """

    def __init__(self, in_dim: int = 512, dims: Sequence[int] = (512, 512, 128)) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, dims[-1]
        self.projection = mlp(in_dim, dims, hidden_batchnorm=False)

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.in_dim, type(self).__name__)
        return self.projection(x)


class Expander(nn.Module):
    """VICReg expander (AV-SSRL ``Expander``, spec §3B.5): ``[4096]×3``, BN on the hidden layers.

    Args:
        in_dim: encoder feature size (512).
        dims: layer sizes; ``(4096, 4096, 4096)`` has 35,680,256 parameters from 512.

    ``[B, in_dim] -> [B, dims[-1]]``.
    """

    def __init__(self, in_dim: int = 512, dims: Sequence[int] = (4096, 4096, 4096)) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, dims[-1]
        self.expansion = mlp(in_dim, dims, hidden_batchnorm=True)

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.in_dim, type(self).__name__)
        return self.expansion(x)


class SimSiamProjector(nn.Module):
    """CrissCross projector ``projection_MLP`` (spec §2.4; SimSiam, Chen & He 2021).

    Args:
        in_dim: encoder feature size (512).
        dim: width of every layer and output size (2048).
        num_layers: 3 (``vid_proj_layers: 3``) or 2 (the middle layer dropped).

    ``[B, in_dim] -> [B, dim]``; with 3 layers from 512: 9,455,616 parameters.
    """

    def __init__(self, in_dim: int = 512, dim: int = 2048, num_layers: int = 3) -> None:
        super().__init__()
        if num_layers not in (2, 3):
            raise ValueError(f"SimSiamProjector: num_layers must be 2 or 3, got {num_layers}")
        self.in_dim, self.out_dim = in_dim, dim
        self.layers = mlp(in_dim, [dim] * num_layers, hidden_batchnorm=True, output_batchnorm=True)

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.in_dim, type(self).__name__)
        return self.layers(x)


class SimSiamPredictor(nn.Module):
    """CrissCross predictor ``prediction_MLP`` (spec §2.4): bottleneck Linear–BN–ReLU–Linear.

    Args:
        dim: input and output size (the projector's, 2048).
        hidden_dim: bottleneck size (512); 2,100,736 parameters with the defaults.

    ``[B, dim] -> [B, dim]``.
    """

    def __init__(self, dim: int = 2048, hidden_dim: int = 512) -> None:
        super().__init__()
        self.in_dim = self.out_dim = dim
        self.layers = mlp(dim, [hidden_dim, dim], hidden_batchnorm=True)

    def forward(self, x: Tensor) -> Tensor:
        _check_features(x, self.in_dim, type(self).__name__)
        return self.layers(x)
