"""The checkpoint format: every model round-trips; hostile or wrong files fail with one clear line."""

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save, save_file

from colorize_cli.colour.lab import AB_SCALE
from colorize_cli.models import MODEL_NAMES, build_model
from colorize_cli.models.checkpoint import (
    HEADER_KEY,
    CheckpointError,
    load_checkpoint,
    read_header,
    record_checksum,
    save_checkpoint,
)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_round_trips(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, training={"images": 12}, metrics={"auc": 91.0})
    loaded, header = load_checkpoint(path)
    assert header["model"] == name
    assert header["ab_scale"] == AB_SCALE
    assert header["training"] == {"images": 12} and header["metrics"] == {"auc": 91.0}
    assert header["version"]
    l_norm = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.predict_ab(l_norm), loaded.predict_ab(l_norm))


def test_fp16_storage_halves_the_file_and_loads_close(tmp_path):
    model = build_model("cnn").eval()
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_checkpoint(full, model)
    save_checkpoint(half, model, dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_checkpoint(half)
    assert next(loaded.parameters()).dtype == torch.float32
    l_norm = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert (model.predict_ab(l_norm) - loaded.predict_ab(l_norm)).abs().max() < 1e-2


class _RunsCode:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"state": _RunsCode()}))
    with pytest.raises(CheckpointError, match="pickle") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_torch_save_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("cnn").state_dict(), path)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint(path)


def _write_with_header(path, tensors, header):
    save_file(tensors, str(path), metadata={"colorize": json.dumps(header)})


def test_wrong_model_name_and_lying_shapes(tmp_path):
    model = build_model("cnn")
    good = tmp_path / "good.safetensors"
    header = save_checkpoint(good, model)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}

    wrong_name = tmp_path / "wrong.safetensors"
    _write_with_header(wrong_name, tensors, {**header, "model": "deoldify"})
    with pytest.raises(CheckpointError, match="unknown model 'deoldify'"):
        load_checkpoint(wrong_name)

    other_model = tmp_path / "other.safetensors"
    _write_with_header(other_model, tensors, {**header, "model": "gan", "config": {}})
    with pytest.raises(CheckpointError, match="model 'gan'"):
        load_checkpoint(other_model)

    key = next(iter(tensors))
    lying = tmp_path / "lying.safetensors"
    _write_with_header(lying, {**tensors, key: torch.zeros(3, 3)}, header)
    with pytest.raises(CheckpointError, match="has shape"):
        load_checkpoint(lying)


def test_headers_without_a_config_object_non_finite_settings_and_integer_weights_are_refused(tmp_path):
    model = build_model("cnn")
    header = save_checkpoint(tmp_path / "good.safetensors", model)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    cases = {
        "no_config": ({k: v for k, v in header.items() if k != "config"}, tensors, "not an object with a model config"),
        "a_list": (["not", "a", "header"], tensors, "not an object with a model config"),
        "nan": ({**header, "config": {**header["config"], "width": float("nan")}}, tensors, "holds nan for 'width'"),
        "integers": (header, {k: v.to(torch.int64) if v.is_floating_point() else v for k, v in tensors.items()},
                     "is torch.int64, model 'cnn' expects torch.float32"),
    }
    for name, (bad_header, bad_tensors, message) in cases.items():
        _write_with_header(tmp_path / f"{name}.safetensors", bad_tensors, bad_header)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / f"{name}.safetensors")


def test_truncated_missing_and_headerless_files(tmp_path):
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, build_model("cnn"))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match=r"a folder, not a checkpoint file; .* e\.g\. .*good\.safetensors"):
        load_checkpoint(tmp_path)  # a run folder given as --model
    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(2)}, str(bare))
    with pytest.raises(CheckpointError, match="without a colorize header"):
        read_header(bare)


def test_sha256sums_beside_the_file_is_verified(tmp_path):
    path = tmp_path / "cnn.safetensors"
    save_checkpoint(path, build_model("cnn"))
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  cnn.safetensors\n")
    with pytest.raises(CheckpointError, match="SHA-256 does not match"):
        load_checkpoint(path)
    other = tmp_path / "gan.safetensors"
    save_checkpoint(other, build_model("gan"))
    record_checksum(other)
    record_checksum(path)  # replaces the wrong line, keeps the other
    assert len((tmp_path / "SHA256SUMS").read_text().splitlines()) == 2
    load_checkpoint(path)
    load_checkpoint(other)


def test_saved_checkpoints_get_the_umask_mode_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "w.safetensors", build_model("cnn"))
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("name", "legacy"), [("gan", {"encoder": "scratch"}), ("autoencoder", {"global_branch": "joint"})])
def test_checkpoints_from_before_the_pretrained_encoder_still_load(name, legacy, tmp_path):
    """Their configs lack the keys that now default to the pretrained architectures; the scratch gan's
    tensors had no `unet.` prefix yet."""
    torch.manual_seed(0)
    model = build_model(name, legacy).eval()
    header = save_checkpoint(tmp_path / "new.safetensors", model)
    old_config = {key: value for key, value in header["config"].items() if key not in (*legacy, "chroma_gain")}
    old_tensors = {key.removeprefix("unet."): value.contiguous() for key, value in model.state_dict().items()}
    old_header = {**header, "config": old_config, "version": "0.1.0"}
    (tmp_path / "old.safetensors").write_bytes(save(old_tensors, metadata={HEADER_KEY: json.dumps(old_header)}))

    loaded, _ = load_checkpoint(tmp_path / "old.safetensors")
    l_norm = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.predict_ab(l_norm), model.predict_ab(l_norm))
