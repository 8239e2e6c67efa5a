"""RRDBNet, the ESRGAN / Real-ESRGAN generator, and its construction from a state dict.

Written here because the maintained loader (spandrel) requires torchvision, which this
worker's torch build does not have. The module and parameter names follow the official
Real-ESRGAN (BasicSR) layout exactly - ``conv_first``, ``body.N.rdbK.convM``, ``conv_body``,
``conv_upN``, ``conv_hr``, ``conv_last`` - so the published ``.pth`` files load with
``strict=True`` and nothing is renamed.

Everything about the network is read from the weights: feature width from ``conv_first``,
growth channels from the first dense conv, depth from the highest ``body.N``, the upsampling
from how many ``conv_upN`` there are, and the pixel-unshuffle that the x2 (and x1) models
apply first from ``conv_first``'s input channels (3, 12 or 48).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

_BODY = re.compile(r"^body\.(\d+)\.")
_UP = re.compile(r"^conv_up(\d+)\.weight$")


class _DenseBlock(nn.Module):
    """Five 3x3 convs, each seeing all earlier outputs; the result is scaled by 0.2 and added."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(features + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        out: torch.Tensor = x5 * 0.2 + x
        return out


class _RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks and a scaled skip."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = _DenseBlock(features, growth)
        self.rdb2 = _DenseBlock(features, growth)
        self.rdb3 = _DenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x
        return out


@dataclass(frozen=True)
class RRDBConfig:
    features: int = 64
    growth: int = 32
    blocks: int = 23
    upsamples: int = 2  # nearest-neighbour x2 steps, each followed by a conv
    unshuffle: int = 1  # pixel-unshuffle factor applied to the input (x2 models: 2)
    channels: int = 3

    @property
    def scale(self) -> int:
        return int(2**self.upsamples // self.unshuffle)


class RRDBNet(nn.Module):
    def __init__(self, config: RRDBConfig) -> None:
        super().__init__()
        self.config = config
        c, f = config.channels, config.features
        self.conv_first = nn.Conv2d(c * config.unshuffle**2, f, 3, 1, 1)
        self.body = nn.Sequential(*(_RRDB(f, config.growth) for _ in range(config.blocks)))
        self.conv_body = nn.Conv2d(f, f, 3, 1, 1)
        for index in range(1, config.upsamples + 1):
            self.add_module(f"conv_up{index}", nn.Conv2d(f, f, 3, 1, 1))
        self.conv_hr = nn.Conv2d(f, f, 3, 1, 1)
        self.conv_last = nn.Conv2d(f, c, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.config.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for index in range(1, self.config.upsamples + 1):
            conv = getattr(self, f"conv_up{index}")
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out: torch.Tensor = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out


def unwrap_state_dict(raw: Any) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: BasicSR saves them under ``params_ema`` (or ``params``)."""
    if isinstance(raw, dict):
        for key in ("params_ema", "params", "state_dict", "model_state_dict"):
            if isinstance(raw.get(key), dict):
                raw = raw[key]
                break
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ValueError("the file holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in raw.items()}


def config_from_state_dict(state: dict[str, torch.Tensor]) -> RRDBConfig:
    """Read the architecture off the official key layout; ``ValueError`` when it is not RRDBNet."""
    first = state.get("conv_first.weight")
    dense = state.get("body.0.rdb1.conv1.weight")
    last = state.get("conv_last.weight")
    if first is None or dense is None or last is None:
        raise ValueError("not an RRDBNet (Real-ESRGAN) state dict: conv_first / body.0.rdb1 / conv_last missing")
    channels = int(last.shape[0])
    in_channels = int(first.shape[1])
    unshuffle = round((in_channels / channels) ** 0.5)
    if unshuffle**2 * channels != in_channels:
        raise ValueError(f"conv_first takes {in_channels} channels, not a pixel-unshuffle of {channels}")
    blocks = 1 + max(int(m.group(1)) for key in state if (m := _BODY.match(key)))
    upsamples = sum(1 for key in state if _UP.match(key))
    return RRDBConfig(
        features=int(first.shape[0]),
        growth=int(dense.shape[0]),
        blocks=blocks,
        upsamples=upsamples,
        unshuffle=unshuffle,
        channels=channels,
    )


def from_state_dict(raw: Any) -> RRDBNet:
    """An RRDBNet with ``raw``'s weights loaded strictly (every key used, none missing)."""
    state = unwrap_state_dict(raw)
    config = config_from_state_dict(state)
    if config.scale < 1 or 2**config.upsamples % config.unshuffle:
        raise ValueError(f"unsupported RRDBNet scale ({config.upsamples} upsamples, unshuffle {config.unshuffle})")
    model = RRDBNet(config)
    model.load_state_dict(state, strict=True)
    return model.eval()
