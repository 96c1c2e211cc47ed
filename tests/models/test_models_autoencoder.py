"""The autoencoder: presets build what they say, shapes and ranges, encode/decode = forward."""
import pytest
import torch
from hydra.utils import instantiate

from faceswap.config import compose
from faceswap.models.autoencoder import Autoencoder, AutoencoderConfig, ResBlock


def preset(name: str) -> Autoencoder:
    cfg = compose("train", [f"model={name}", "data.a=x", "data.b=y", "out=z"])
    return instantiate(cfg.model, _convert_="all")


def test_original_is_the_classic_architecture():
    model = preset("original")
    # 5x5 stride-2 convs 128-256-512-1024, dense 1024, dense 4x4x1024, upscale to 512; decoders 256-128-64.
    assert [b.conv.out_channels for b in model.encoder.down] == [128, 256, 512, 1024]
    assert all(b.conv.kernel_size == (5, 5) and b.conv.stride == (2, 2) for b in model.encoder.down)
    assert model.encoder.to_latent.out_features == 1024
    assert model.encoder.from_latent.out_features == 4 * 4 * 1024
    assert model.encoder.up.conv.out_channels == 512 * 4
    assert set(model.decoders) == {"a", "b"}
    assert 80e6 < model.num_params() < 84e6


def test_lite_is_small_and_hires_has_residual_blocks():
    lite = preset("lite")
    assert 5e6 < lite.num_params() < 10e6
    assert any(isinstance(m, torch.nn.GroupNorm) for m in lite.modules())
    hires = preset("hires")
    assert hires.config.resolution >= 128
    assert any(isinstance(m, ResBlock) for m in hires.decoders["a"].modules())


def tiny(**kw) -> Autoencoder:
    args = dict(resolution=32, encoder_channels=(8, 16, 32), latent_dim=32, bottleneck_channels=16, encoder_upscale=16,
                decoder_channels=(16, 8), norm="group", groups=4)
    args.update(kw)
    return Autoencoder(**args)


@pytest.mark.parametrize("norm", ["none", "group", "batch", "instance"])
def test_shapes_and_ranges(norm):
    torch.manual_seed(0)
    model = tiny(norm=norm, decoder_res_blocks=1).eval()
    x = torch.rand(3, 3, 32, 32)
    rgb, mask = model(x, "a")
    assert rgb.shape == (3, 3, 32, 32) and mask.shape == (3, 1, 32, 32)
    assert rgb.min() >= 0 and rgb.max() <= 1 and mask.min() >= 0 and mask.max() <= 1
    z = model.encode(x)
    rgb2, mask2 = model.decode(z, "a")
    assert torch.equal(rgb, rgb2) and torch.equal(mask, mask2)
    # The two decoders are different networks.
    assert not torch.allclose(model.decode(z, "b")[0], rgb)


def test_unknown_identity_and_bad_sizes():
    model = tiny()
    with pytest.raises(KeyError, match="identity 'c'"):
        model.decode(torch.zeros(1, 16, 8, 8), "c")
    with pytest.raises(ValueError, match="resolution 36"):
        tiny(resolution=36)
    with pytest.raises(ValueError, match="norm"):
        tiny(norm="layer")


def test_constructor_args_rebuild_the_same_network():
    model = tiny(activation="silu")
    args = model.constructor_args()
    clone = Autoencoder(**args)
    clone.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model.eval()(x, "b")[0], clone.eval()(x, "b")[0])
    assert AutoencoderConfig.from_dict(args) == model.config
    with pytest.raises(ValueError, match="unknown model arguments"):
        AutoencoderConfig.from_dict({**args, "depth": 3})
