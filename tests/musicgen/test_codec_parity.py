"""Parity with transformers' EncodecModel on random weights, and the three checkpoint layouts."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
from transformers import EncodecConfig, EncodecModel  # noqa: E402
from transformers.models.encodec.modeling_encodec import EncodecConv1d, EncodecConvTranspose1d  # noqa: E402

from musicgen import CompressionModel  # noqa: E402
from musicgen.checkpoints.codec_audiocraft import (  # noqa: E402
    codec_config_from_audiocraft,
    convert_audiocraft_codec_state,
)
from musicgen.checkpoints.codec_transformers import (  # noqa: E402
    codec_config_from_transformers,
    convert_transformers_codec_state,
)
from musicgen.checkpoints.files import load_state_strict  # noqa: E402
from musicgen.testing import ENCODEC_32KHZ  # noqa: E402

MUSICGEN_32KHZ = ENCODEC_32KHZ  # the config.json of facebook/encodec_32khz
TINY = dict(
    MUSICGEN_32KHZ,
    sampling_rate=8000,
    num_filters=4,
    upsampling_ratios=[4, 2],
    codebook_size=32,
    codebook_dim=16,
    hidden_size=16,
    num_lstm_layers=1,
    target_bandwidths=[20.0],
)  # 4 codebooks of 5 bits at 1000 Hz


def random_hf(config: dict, seed: int = 0) -> EncodecModel:
    """An EncodecModel with random weights everywhere, codebooks included (their init is zeros)."""
    torch.manual_seed(seed)
    model = EncodecModel(EncodecConfig(**config)).eval()
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("codebook.embed"):
                buf.normal_()
    return model


def hf_codes_and_audio(hf: EncodecModel, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        enc = hf.encode(wav, bandwidth=hf.config.target_bandwidths[-1])
        audio = hf.decode(enc.audio_codes, enc.audio_scales).audio_values
    return enc.audio_codes[0], audio


def assert_same(ours: CompressionModel, hf: EncodecModel | tuple, wav: torch.Tensor) -> None:
    """``hf`` is the reference model or its precomputed (codes, audio) for ``wav``."""
    ref_codes, ref_audio = hf if isinstance(hf, tuple) else hf_codes_and_audio(hf, wav)
    with torch.no_grad():
        codes = ours.encode(wav)
        audio = ours.decode(codes)
    assert codes.shape == ref_codes.shape
    assert torch.equal(codes, ref_codes)
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max().item() < 1e-4


def audiocraft_state(hf: EncodecModel) -> dict[str, torch.Tensor]:
    """The transformers weights renamed to audiocraft's layout, derived from the module types."""
    renames = {}
    for name, module in hf.named_modules():
        aname = name.replace(".layers.", ".model.", 1) if name.startswith(("encoder.", "decoder.")) else name
        if isinstance(module, EncodecConvTranspose1d):
            renames[name + ".conv."] = aname + ".convtr.convtr."
        elif isinstance(module, EncodecConv1d):
            renames[name + ".conv."] = aname + ".conv.conv."
        elif name.endswith(".lstm") and name.count(".") == 3:
            renames[name + "."] = aname + "."
    out = {}
    for key, value in hf.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        prefix = max((p for p in renames if key.startswith(p)), key=len, default=None)
        if prefix is not None:
            key = renames[prefix] + key[len(prefix) :]
        elif key.startswith("quantizer.layers."):
            _, _, n, _, rest = key.split(".", 4)
            key = f"quantizer.vq.layers.{n}._codebook.{rest}"
        out[key] = value
    return out


def audiocraft_cfg(c: dict) -> str:
    """An ``xp.cfg`` as audiocraft writes it: unresolved ``${...}`` references included."""
    return yaml.safe_dump(
        {
            "sample_rate": c["sampling_rate"],
            "channels": c["audio_channels"],
            "compression_model": "encodec",
            "encodec": {
                "autoencoder": "seanet",
                "quantizer": "rvq",
                "sample_rate": "${sample_rate}",
                "channels": "${channels}",
                "causal": c["use_causal_conv"],
                "renormalize": False,
            },
            "seanet": {
                "dimension": c["hidden_size"],
                "channels": "${channels}",
                "causal": "${encodec.causal}",
                "n_filters": c["num_filters"],
                "ratios": c["upsampling_ratios"],
                "n_residual_layers": 1,
                "lstm": c["num_lstm_layers"],
                "true_skip": not c["use_conv_shortcut"],
                "norm": "weight_norm",
                "pad_mode": "reflect",
                "encoder": {},
                "decoder": {"trim_right_ratio": 1.0},
            },
            "rvq": {"n_q": 4, "bins": c["codebook_size"]},
        }
    )


def check_all_layouts(hf: EncodecModel, config: dict, wav: torch.Tensor, tmp_path) -> None:
    ref = hf_codes_and_audio(hf, wav)
    # transformers folder, new parametrization names
    hf.save_pretrained(tmp_path / "new")
    keys = load_file(str(tmp_path / "new" / "model.safetensors"))
    assert any("parametrizations.weight.original0" in k for k in keys)
    assert_same(CompressionModel.from_pretrained(tmp_path / "new"), ref, wav)
    # transformers folder, old weight_g / weight_v names
    old = {
        k.replace(".parametrizations.weight.original0", ".weight_g").replace(
            ".parametrizations.weight.original1", ".weight_v"
        ): v
        for k, v in keys.items()
    }
    (tmp_path / "old").mkdir()
    save_file(old, str(tmp_path / "old" / "model.safetensors"))
    (tmp_path / "old" / "config.json").write_text((tmp_path / "new" / "config.json").read_text())
    ours = CompressionModel.from_pretrained(tmp_path / "old")
    assert_same(ours, ref, wav)
    # audiocraft compression_state_dict.bin (folder and file)
    (tmp_path / "ac").mkdir()
    pkg = {
        "best_state": audiocraft_state(hf),
        "xp.cfg": audiocraft_cfg(config),
        "version": "1.3.0",
        "exported": True,
    }
    assert "encoder.model.0.conv.conv.weight_g" in pkg["best_state"]
    torch.save(pkg, tmp_path / "ac" / "compression_state_dict.bin")
    assert_same(CompressionModel.from_pretrained(tmp_path / "ac"), ref, wav)
    assert_same(CompressionModel.from_pretrained(tmp_path / "ac" / "compression_state_dict.bin"), ref, wav)
    # native save / load is exact
    ours.save_pretrained(tmp_path / "native")
    again = CompressionModel.from_pretrained(tmp_path / "native")
    for (k1, v1), (k2, v2) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    with torch.no_grad():
        assert torch.equal(again.encode(wav), ours.encode(wav))


def test_tiny_parity_all_layouts(tmp_path):
    hf = random_hf(TINY)
    wav = 0.1 * torch.randn(2, 1, 1001, generator=torch.Generator().manual_seed(1))
    check_all_layouts(hf, TINY, wav, tmp_path)


@pytest.mark.parametrize("causal,shortcut", [(True, True), (False, True)])
def test_tiny_parity_causal_and_conv_shortcut(causal, shortcut, tmp_path):
    config = dict(TINY, use_causal_conv=causal, use_conv_shortcut=shortcut)
    hf = random_hf(config, seed=3)
    hf.save_pretrained(tmp_path)
    ours = CompressionModel.from_pretrained(tmp_path)
    assert ours.config.causal is causal and ours.config.true_skip is (not shortcut)
    assert_same(ours, hf, 0.1 * torch.randn(1, 1, 333))


@pytest.mark.slow
def test_musicgen_32khz_parity_all_layouts():
    """The released configuration: the model runs once; the other layouts must convert to the same weights
    (running them is what the tiny test above does, file by file)."""
    hf = random_hf(MUSICGEN_32KHZ)
    wav = 0.1 * torch.randn(
        1, 1, 31_900, generator=torch.Generator().manual_seed(0)
    )  # ~1 s, not a hop multiple
    hf_state = hf.state_dict()
    new = convert_transformers_codec_state(hf_state)
    ours = CompressionModel(codec_config_from_transformers(hf.config.to_dict())).eval()
    load_state_strict(ours, new, "transformers")
    assert (ours.sample_rate, ours.frame_rate, ours.num_codebooks, ours.cardinality) == (32000, 50.0, 4, 2048)
    assert ours.hop_length == 640
    assert_same(ours, hf, wav)
    old = convert_transformers_codec_state(
        {
            k.replace(".parametrizations.weight.original0", ".weight_g").replace(
                ".parametrizations.weight.original1", ".weight_v"
            ): v
            for k, v in hf_state.items()
        }
    )
    ac = convert_audiocraft_codec_state(audiocraft_state(hf))
    ac_config = codec_config_from_audiocraft(yaml.safe_load(audiocraft_cfg(MUSICGEN_32KHZ)), "xp.cfg")
    assert ac_config == ours.config
    for other in (old, ac):
        assert sorted(other) == sorted(new)
        assert all(torch.equal(other[k], new[k]) for k in new)


def test_musicgen_folder_uses_its_audio_encoder(tmp_path):
    hf = random_hf(TINY, seed=5)
    state = {"audio_encoder." + k: v.contiguous() for k, v in hf.state_dict().items()}
    state["decoder.lm_heads.0.weight"] = torch.zeros(2, 2)  # other parts of the folder are ignored
    save_file(state, str(tmp_path / "model.safetensors"))
    cfg = {"model_type": "musicgen", "audio_encoder": hf.config.to_dict(), "decoder": {}, "text_encoder": {}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert_same(CompressionModel.from_pretrained(tmp_path), hf, 0.1 * torch.randn(1, 1, 400))


def test_loader_errors_name_file_and_keys(tmp_path):
    hf = random_hf(TINY)
    hf.save_pretrained(tmp_path)
    keys = load_file(str(tmp_path / "model.safetensors"))
    keys["encoder.layers.0.conv.extra"] = torch.zeros(1)
    del keys["decoder.layers.0.conv.bias"]
    save_file(keys, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.safetensors.*decoder\.layers\.0\.conv\.bias.*conv\.extra"):
        CompressionModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        CompressionModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="compression_state_dict.bin"):
        CompressionModel.from_pretrained(tmp_path / "..")


def test_audiocraft_pretrained_reference_resolves_in_local_hf_cache(tmp_path, monkeypatch):
    """Released MusicGen folders hold {'pretrained': 'facebook/encodec_32khz'}: resolved offline."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    torch.save(
        {"pretrained": "facebook/encodec_32khz", "exported": True}, tmp_path / "compression_state_dict.bin"
    )
    with pytest.raises(FileNotFoundError, match="huggingface-cli download facebook/encodec_32khz"):
        CompressionModel.from_pretrained(tmp_path)
    hf = random_hf(TINY, seed=7)
    hf.save_pretrained(tmp_path / "hub" / "models--facebook--encodec_32khz" / "snapshots" / "abc")
    assert_same(
        CompressionModel.from_pretrained(tmp_path / "compression_state_dict.bin"),
        hf,
        0.1 * torch.randn(1, 1, 300),
    )
