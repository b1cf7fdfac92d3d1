"""Codec training objective: spectral losses, balancer, discriminator, and a short real training run."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from musicgen.models.codec import CompressionModel, tiny_config
from musicgen.train.balancer import Balancer
from musicgen.train.codec_losses import MelSpectrogram, MultiScaleMelLoss, MultiScaleSTFTLoss
from musicgen.train.codec_trainer import CodecTrainConfig, CodecTrainer, tone_batches, train_codec
from musicgen.train.discriminator import (
    MultiScaleSTFTDiscriminator,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)


def test_mel_spectrogram_matches_librosa():
    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    ours = MelSpectrogram(16000, 512, 128, 40)(torch.from_numpy(x).view(1, 1, -1))[0, 0].numpy()
    ref = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=512, hop_length=128, n_mels=40, power=1.0, center=True, pad_mode="reflect"
    )
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_spectral_losses_are_zero_on_identity_and_grow_with_noise():
    x = 0.1 * torch.randn(2, 1, 2000, generator=torch.Generator().manual_seed(0))
    for loss in (MultiScaleMelLoss(8000, (64, 256)), MultiScaleSTFTLoss((64, 256))):
        small = loss(x + 0.001 * torch.randn_like(x), x)
        large = loss(x + 0.1 * torch.randn_like(x), x)
        assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
        assert 0 < float(small) < float(large)


def test_balancer_gives_each_loss_its_fraction_of_the_gradient():
    y = torch.zeros(6, requires_grad=True)
    a = torch.tensor([1.0, 0, 0, 0, 0, 0])
    b = torch.tensor([0, 3.0, 4.0, 0, 0, 0])
    losses = {"big": 1000 * (y * a).sum(), "small": 0.001 * (y * b).sum()}
    bal = Balancer({"big": 1.0, "small": 3.0}, total_norm=2.0, per_batch_item=False)
    grad = bal.backward(losses, y)
    expected = 2.0 * (0.25 * a / a.norm() + 0.75 * b / b.norm())
    assert torch.allclose(grad, expected, atol=1e-6)
    plain = Balancer({"big": 1.0, "small": 3.0}, balance=False)
    y2 = torch.zeros(6, requires_grad=True)
    grad2 = plain.backward({"big": 1000 * (y2 * a).sum(), "small": 0.001 * (y2 * b).sum()}, y2)
    assert torch.allclose(grad2, 1000 * a + 0.003 * b)
    with pytest.raises(ValueError, match="no balancer weight"):
        bal.backward({"other": y.sum()}, y)


def test_discriminator_shapes_and_hinge_losses():
    disc = MultiScaleSTFTDiscriminator(channels=1, filters=4, n_ffts=(128, 64))
    x = torch.randn(2, 1, 1000)
    logits, feats = disc(x)
    assert len(logits) == 2 and all(lg.shape[:2] == (2, 1) for lg in logits)
    assert all(len(f) == 5 for f in feats)
    real = [torch.tensor([2.0, 0.5])]
    fake = [torch.tensor([-2.0, 0.0])]
    assert float(discriminator_hinge_loss(real, fake)) == pytest.approx((0 + 0.5) / 2 + (0 + 1.0) / 2)
    assert float(generator_hinge_loss(fake)) == pytest.approx((3.0 + 1.0) / 2)
    assert float(feature_matching_loss(feats, feats).detach()) == 0.0


def test_adversarial_trainer_steps_update_both_networks():
    torch.manual_seed(0)
    model = CompressionModel(
        tiny_config(n_filters=4, ratios=[4, 4], dimension=8, codebook_size=16, lstm_layers=0)
    )
    cfg = CodecTrainConfig(steps=2, adversarial=True, mel_n_ffts=(64,), disc_n_ffts=(64,), disc_filters=4)
    trainer = CodecTrainer(model, cfg)
    disc_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    model_before = [p.detach().clone() for p in model.parameters()]
    batches = tone_batches(2, 512, 8000, seed=0)
    logs = [trainer.step(next(batches)) for _ in range(2)]
    assert set(logs[-1]) == {"d_loss", "l1", "mel", "adv", "feat", "commitment"}
    assert all(np.isfinite(v) for log in logs for v in log.values())
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, trainer.discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(model_before, model.parameters()))
    state = trainer.state_dict()
    CodecTrainer(model, cfg).load_state_dict(state)


@pytest.mark.slow
def test_training_on_tones_reduces_reconstruction_error():
    torch.manual_seed(0)
    config = tiny_config(n_filters=4, ratios=[4, 4], dimension=8, codebook_size=32, lstm_layers=0)
    model = CompressionModel(config)
    untrained = CompressionModel(config)
    untrained.load_state_dict(model.state_dict())
    held_out = next(tone_batches(8, 1024, 8000, seed=123))
    with torch.no_grad():
        untrained.train()(held_out)  # k-means codebooks on the held-out audio: the fairest untrained codec

    def error(m: CompressionModel) -> float:
        m.eval()
        with torch.no_grad():
            return float((m.decode(m.encode(held_out), length=held_out.shape[-1]) - held_out).abs().mean())

    cfg = CodecTrainConfig(steps=120, lr=3e-3, mel_n_ffts=(64, 256))
    history = train_codec(model, tone_batches(4, 512, 8000, seed=1), cfg)  # one thread: tests/conftest.py
    assert len(history) == 120
    before, after = error(untrained), error(model)
    silence = float(held_out.abs().mean())  # the error of outputting zeros
    assert after < 0.3 * before
    assert after < silence
