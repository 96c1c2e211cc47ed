"""Checkpoints: round trip, atomic layout, rebuild without the training config, one-line errors."""
import json

import pytest
import torch

from faceswap.errors import UserError
from faceswap.models.autoencoder import Autoencoder
from faceswap.models.checkpoint import (find_latest, flatten_optimizer_state, list_checkpoints, load_checkpoint,
                                        save_checkpoint, unflatten_optimizer_state)

ARGS = dict(name="tiny", resolution=32, encoder_channels=(8, 16, 32), latent_dim=32, bottleneck_channels=16,
            encoder_upscale=16, decoder_channels=(16, 8), norm="group", groups=4)


def trained_pair():
    torch.manual_seed(0)
    model = Autoencoder(**ARGS)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.rand(2, 3, 32, 32)
    for _ in range(2):
        rgb, mask = model(x, "a")
        opt.zero_grad()
        (rgb.mean() + mask.mean()).backward()
        opt.step()
    return model, opt, x


def test_round_trip_rebuilds_model_and_optimizer(tmp_path):
    model, opt, x = trained_pair()
    path = save_checkpoint(tmp_path, 7, model, optimizer_state=opt.state_dict(), state={"note": "hi"})
    assert path.name == "step_00000007"
    assert (tmp_path / "latest").read_text().strip() == "step_00000007"
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "optimizer.safetensors", "state.json"]
    ckpt = load_checkpoint(tmp_path, training_state=True)  # the checkpoints folder resolves to the newest
    assert ckpt.step == 7 and ckpt.state["note"] == "hi" and ckpt.identities == ["a", "b"]
    assert ckpt.model.config == model.config
    assert torch.equal(ckpt.model(x, "a")[0], model.eval()(x, "a")[0])
    opt2 = torch.optim.AdamW(ckpt.model.parameters(), 1e-3)
    opt2.load_state_dict(ckpt.optimizer)
    for (k1, s1), (k2, s2) in zip(opt.state_dict()["state"].items(), opt2.state_dict()["state"].items()):
        assert k1 == k2 and all(torch.equal(s1[n], s2[n]) for n in s1)


def test_optimizer_flatten_is_lossless():
    _, opt, _ = trained_pair()
    sd = opt.state_dict()
    tensors, meta = flatten_optimizer_state(sd)
    meta = json.loads(json.dumps(meta))  # what state.json holds
    back = unflatten_optimizer_state(tensors, meta)
    assert back["param_groups"] == json.loads(json.dumps(sd["param_groups"]))
    assert set(back["state"]) == set(sd["state"])
    for k, entry in sd["state"].items():
        for n, v in entry.items():
            assert torch.equal(back["state"][k][n], v)


def test_keep_prunes_and_latest_is_newest(tmp_path):
    model, _, _ = trained_pair()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, model, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003", "step_00000004"]
    assert find_latest(tmp_path).name == "step_00000004"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_half_written_folder_is_ignored(tmp_path):
    model, _, _ = trained_pair()
    save_checkpoint(tmp_path, 1, model)
    (tmp_path / "step_00000009").mkdir()  # a crash before state.json: not a checkpoint
    (tmp_path / ".tmp_step_00000010_x").mkdir()
    assert find_latest(tmp_path).name == "step_00000001"


def test_ema_weights_are_preferred(tmp_path):
    model, _, x = trained_pair()
    ema = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path, 1, model, ema_state=ema)
    assert load_checkpoint(tmp_path).weights == "ema"
    assert load_checkpoint(tmp_path, weights="model").weights == "model"
    assert torch.equal(load_checkpoint(tmp_path, weights="model").model(x, "a")[0], model.eval()(x, "a")[0])


def one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_other_architecture_is_a_user_error(tmp_path):
    model, _, _ = trained_pair()
    save_checkpoint(tmp_path, 1, model)
    want = {**model.constructor_args(), "name": "lite", "resolution": 64, "encoder_channels": [8, 16, 32, 64]}
    with pytest.raises(UserError) as exc:
        load_checkpoint(tmp_path, expect=want)
    msg = one_line(exc)
    assert "'tiny' (32 px" in msg and "'lite' (64 px" in msg and "resolution 32 vs 64" in msg
    # The label alone is no mismatch.
    assert load_checkpoint(tmp_path, expect={**model.constructor_args(), "name": "renamed"}).step == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_weights_name_the_file(tmp_path, damage):
    model, _, _ = trained_pair()
    path = save_checkpoint(tmp_path, 1, model)
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a tensor file")
    with pytest.raises(UserError) as exc:
        load_checkpoint(path)
    assert str(f) in one_line(exc) and "corrupt" in one_line(exc)


def test_corrupt_state_and_missing_paths(tmp_path):
    model, _, _ = trained_pair()
    path = save_checkpoint(tmp_path, 1, model)
    (path / "state.json").write_text("{", encoding="utf-8")
    with pytest.raises(UserError, match="state.json is corrupt"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no complete checkpoint"):
        load_checkpoint(tmp_path / "empty")


def test_model_class_from_file_is_never_imported(tmp_path):
    model, _, _ = trained_pair()
    path = save_checkpoint(tmp_path, 1, model)
    state = json.loads((path / "state.json").read_text())
    state["model_class"] = "os.system"
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(UserError, match="not one faceswap builds"):
        load_checkpoint(path)
