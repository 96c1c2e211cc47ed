"""The face-swap autoencoder: one shared encoder, one decoder (RGB + mask) per identity, sized by a config."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn


@dataclass
class AutoencoderConfig:
    """Every size and choice of the network; presets live in conf/model/*.yaml."""

    name: str = "custom"  # a label for messages (the preset's name), not used by the network
    resolution: int = 64  # input and output face size in pixels (square)
    identities: tuple[str, ...] = ("a", "b")
    encoder_channels: tuple[int, ...] = (128, 256, 512, 1024)  # one stride-2 conv per entry
    encoder_kernel: int = 5
    latent_dim: int = 1024  # the dense bottleneck: the only path from input to output
    bottleneck_channels: int = 1024  # channels of the spatial map rebuilt from the latent
    encoder_upscale: int = 512  # channels after the encoder's own upscale (what a decoder receives)
    decoder_channels: tuple[int, ...] = (256, 128, 64)  # one x2 PixelShuffle upscale per entry
    decoder_res_blocks: int = 0  # residual blocks after each decoder upscale
    output_kernel: int = 5
    norm: str = "none"  # none | group | batch | instance
    groups: int = 8  # for norm=group
    activation: str = "leaky_relu"  # leaky_relu | relu | silu | gelu

    def __post_init__(self):
        self.identities = tuple(str(i) for i in self.identities)
        self.encoder_channels = tuple(int(c) for c in self.encoder_channels)
        self.decoder_channels = tuple(int(c) for c in self.decoder_channels)
        if len(set(self.identities)) != len(self.identities) or not self.identities:
            raise ValueError(f"identities must be distinct names, got {self.identities}")
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {sorted(_NORMS)}, got {self.norm!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        # The encoder halves the size once per conv and doubles it once; each decoder stage doubles it.
        expected = self.bottleneck_size * 2 * 2 ** len(self.decoder_channels)
        if self.resolution % 2 ** len(self.encoder_channels) or expected != self.resolution:
            raise ValueError(
                f"resolution {self.resolution} does not fit {len(self.encoder_channels)} encoder downsamplings and "
                f"{len(self.decoder_channels)} decoder upscales (they give {expected}); change resolution or the channel lists"
            )
        if self.norm == "group":
            widths = (*self.encoder_channels, self.encoder_upscale, *self.decoder_channels)
            bad = [c for c in widths if c % self.groups]
            if bad:
                raise ValueError(f"norm=group with groups={self.groups} needs channel counts divisible by it, got {bad}")

    @property
    def bottleneck_size(self) -> int:
        return self.resolution // 2 ** len(self.encoder_channels)

    @classmethod
    def from_dict(cls, args: dict) -> "AutoencoderConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown model arguments {unknown}")
        return cls(**args)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _act(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


# LeakyReLU(0.1) is the classic model's choice: it keeps gradients alive through the deep dense bottleneck.
_ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}
_NORMS = {"none", "group", "batch", "instance"}


def _norm(kind: str, channels: int, groups: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class ConvBlock(nn.Module):
    """Stride-2 conv, norm, activation: halves the size."""

    def __init__(self, cin: int, cout: int, kernel: int, cfg: AutoencoderConfig):
        super().__init__()
        # A norm layer carries its own shift, so the conv's bias would be redundant.
        self.conv = nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2, bias=cfg.norm == "none")
        self.norm = _norm(cfg.norm, cout, cfg.groups)
        self.act = _act(cfg.activation)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Upscale(nn.Module):
    """3x3 conv to 4x channels, then PixelShuffle: doubles the size without transposed-conv checkerboards."""

    def __init__(self, cin: int, cout: int, cfg: AutoencoderConfig):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1, bias=cfg.norm == "none")
        self.norm = _norm(cfg.norm, cout * 4, cfg.groups)
        self.act = _act(cfg.activation)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.act(self.norm(self.conv(x))))


class ResBlock(nn.Module):
    """Two 3x3 convs with a skip: adds depth (detail) at a fixed size without hurting gradient flow."""

    def __init__(self, channels: int, cfg: AutoencoderConfig):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=cfg.norm == "none")
        self.norm1 = _norm(cfg.norm, channels, cfg.groups)
        self.act = _act(cfg.activation)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=cfg.norm == "none")
        self.norm2 = _norm(cfg.norm, channels, cfg.groups)

    def forward(self, x):
        y = self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))
        return self.act(x + y)


class Encoder(nn.Module):
    """Downsampling convs -> dense bottleneck -> dense back to a small map -> one upscale.

    The dense bottleneck is the point of the design: squeezing the face through a vector forces a
    description of pose, expression and light that both identities' decoders can read.
    """

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        chans = (3, *cfg.encoder_channels)
        self.down = nn.Sequential(*[ConvBlock(a, b, cfg.encoder_kernel, cfg) for a, b in zip(chans, chans[1:])])
        s = cfg.bottleneck_size
        self.to_latent = nn.Linear(chans[-1] * s * s, cfg.latent_dim)
        self.from_latent = nn.Linear(cfg.latent_dim, cfg.bottleneck_channels * s * s)
        self.up = Upscale(cfg.bottleneck_channels, cfg.encoder_upscale, cfg)
        self.shape = (cfg.bottleneck_channels, s, s)

    def forward(self, x):
        x = self.down(x)
        # No activation between the two dense layers: the classic model keeps the latent linear.
        z = self.to_latent(x.flatten(1))
        x = self.from_latent(z).view(-1, *self.shape)
        return self.up(x)


class Decoder(nn.Module):
    """Upscales the shared code into one identity's face, plus a mask saying where the face is."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        chans = (cfg.encoder_upscale, *cfg.decoder_channels)
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers.append(Upscale(a, b, cfg))
            layers.extend(ResBlock(b, cfg) for _ in range(cfg.decoder_res_blocks))
        self.up = nn.Sequential(*layers)
        # One head for RGB (3) and mask (1): they share every feature, as the mask follows the face's outline.
        self.head = nn.Conv2d(chans[-1], 4, cfg.output_kernel, padding=cfg.output_kernel // 2)

    def forward(self, h):
        out = torch.sigmoid(self.head(self.up(h)))
        return out[:, :3], out[:, 3:]


class Autoencoder(nn.Module):
    """``model(x, identity) -> (rgb, mask)``; x is float NCHW in [0, 1], identity one of ``config.identities``."""

    def __init__(self, config: AutoencoderConfig | dict | None = None, **kwargs):
        super().__init__()
        if config is None:
            config = AutoencoderConfig(**kwargs)
        elif isinstance(config, dict):
            config = AutoencoderConfig.from_dict({**config, **kwargs})
        self.config = config
        self.encoder = Encoder(config)
        self.decoders = nn.ModuleDict({name: Decoder(config) for name in config.identities})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, identity: str) -> tuple[torch.Tensor, torch.Tensor]:
        if identity not in self.decoders:
            raise KeyError(f"no decoder for identity {identity!r}; this model has {list(self.decoders)}")
        return self.decoders[identity](z)

    def forward(self, x: torch.Tensor, identity: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.encode(x), identity)

    def constructor_args(self) -> dict:
        """What a checkpoint stores so that ``Autoencoder(**args)`` rebuilds this network."""
        return self.config.to_dict()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def describe(args: dict) -> str:
    """A short human summary of a model's constructor arguments, for messages."""
    return (f"'{args.get('name', 'custom')}' ({args.get('resolution')} px, encoder {args.get('encoder_channels')}, "
            f"latent {args.get('latent_dim')}, decoder {args.get('decoder_channels')}, norm {args.get('norm')})")


__all__ = ["AutoencoderConfig", "Autoencoder", "Encoder", "Decoder", "describe"]
