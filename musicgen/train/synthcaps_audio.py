"""Instrument timbres and drums for the synthetic corpus (``synthcaps``), vectorised numpy.

Every voice renders one note into a float64 buffer ``[N]`` at ``sample_rate``; a ``Mixer`` adds them
at their onsets. Timbres, one function each, chosen to be told apart by ear and by an embedder:

- ``plucked synth``: Karplus-Strong string (noise burst through a damped delay line), cached per pitch;
- ``piano``: bright and dull harmonic wavetables cross-faded under a struck, decaying envelope;
- ``organ``: drawbar harmonics (1, 2, 3, 4, 6, 8) with a sustained envelope and tremolo;
- ``bass``: sine with a little 2nd/3rd harmonic and a plucked envelope, one or two octaves down;
- ``pad``: three detuned saw wavetables with slow attack and release;
- ``bells``: pitched bells, two-operator FM (ratio 2) plus a weak fast-decaying 2.76 partial, long decay;
- ``synth lead``: band-limited square wave with delayed vibrato;
- ``marimba``: sine plus its 4th partial with a fast decay;
- ``flute``: sine with weak harmonics, breath noise and vibrato.

Drums (kick: pitch-swept sine; snare: band-passed noise plus a tone; hat: high-passed noise) are
rendered once per clip and then placed at each hit with its velocity.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

TABLE_SIZE = 4096


def midi_to_hz(pitch: float) -> float:
    """Equal temperament, A4 = MIDI 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


@lru_cache(maxsize=256)
def _wavetable(kind: str, num_harmonics: int) -> np.ndarray:
    """One cycle ``[TABLE_SIZE]`` of a band-limited waveform with ``num_harmonics`` partials."""
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    h = np.arange(1, num_harmonics + 1)
    if kind == "saw":
        amps = 1.0 / h
    elif kind == "square":
        amps = np.where(h % 2 == 1, 1.0 / h, 0.0)
    elif kind == "piano_bright":
        amps = 1.0 / h**0.9
    elif kind == "piano_dull":
        amps = np.exp(-(h - 1) * 1.2)
    elif kind == "organ":
        amps = np.zeros(num_harmonics)
        for harmonic, amp in ((1, 1.0), (2, 0.7), (3, 0.5), (4, 0.4), (6, 0.25), (8, 0.2)):
            if harmonic <= num_harmonics:
                amps[harmonic - 1] = amp
    else:
        raise ValueError(f"unknown wavetable kind {kind!r}")
    table = (amps[:, None] * np.sin(2 * np.pi * h[:, None] * phase[None, :])).sum(0)
    return table / np.max(np.abs(table))


def _table_osc(kind: str, freq_hz: np.ndarray | float, n: int, sample_rate: int, max_harm: int,
               phase0: float = 0.0) -> np.ndarray:
    """Wavetable oscillator ``[n]``; ``freq_hz`` is a scalar or a per-sample array ``[n]``."""
    f_max = float(np.max(freq_hz))
    harmonics = int(max(1, min(max_harm, (0.45 * sample_rate) // max(f_max, 1.0))))
    table = _wavetable(kind, harmonics)
    if np.isscalar(freq_hz):
        cycles = phase0 + freq_hz * np.arange(n) / sample_rate
    else:
        cycles = phase0 + np.cumsum(freq_hz) / sample_rate
    idx = (cycles * TABLE_SIZE).astype(np.int64) & (TABLE_SIZE - 1)
    return table[idx]


def _adsr(n: int, sample_rate: int, attack_s: float, decay_s: float, sustain: float,
          release_s: float, hold_n: int) -> np.ndarray:
    """Piecewise-linear envelope ``[n]``: attack, decay to ``sustain`` until ``hold_n``, release."""
    t = np.arange(n) / sample_rate
    hold_s = hold_n / sample_rate
    xp = [0.0, attack_s, attack_s + decay_s, max(hold_s, attack_s + decay_s), max(hold_s, attack_s + decay_s)
          + release_s]
    fp = [0.0, 1.0, sustain, sustain, 0.0]
    return np.interp(t, xp, fp)


def _exp_decay(n: int, sample_rate: int, tau_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (sample_rate * tau_s))


def _release_tail(env: np.ndarray, hold_n: int, sample_rate: int, release_s: float) -> np.ndarray:
    """Multiply the part after ``hold_n`` by a linear fade to zero over ``release_s``."""
    n = env.shape[0]
    fade = np.clip(1.0 - (np.arange(n) - hold_n) / max(1.0, release_s * sample_rate), 0.0, 1.0)
    return env * fade


class Voices:
    """Renders notes for one clip; ``rng`` drives the noise of plucks, breaths and drums."""

    def __init__(self, sample_rate: int, rng: np.random.Generator) -> None:
        self.sample_rate = sample_rate
        self.rng = rng
        self._pluck_cache: dict[int, np.ndarray] = {}
        self._note_cache: dict[tuple[str, int, int], np.ndarray] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _n(self, seconds: float) -> int:
        return max(1, int(round(seconds * self.sample_rate)))

    def _karplus_strong(self, pitch: int, n: int) -> np.ndarray:
        """Karplus-Strong string ``[n]``: y[i] = x[i] + g * (y[i-P] + y[i-P-1]) / 2, block-wise."""
        cached = self._pluck_cache.get(pitch)
        if cached is not None and cached.shape[0] >= n:
            return cached[:n]
        sr = self.sample_rate
        exact = sr / midi_to_hz(pitch) - 0.5  # the two-point average adds half a sample of delay
        period = max(2, int(round(exact)))
        total = int(1.05 * max(n, 2 * period)) + 2
        blocks = -(-total // period) + 1
        y = np.zeros(blocks * period + 1)  # y[0] is a zero guard for the i-P-1 term of block 0
        burst = self.rng.uniform(-1.0, 1.0, period)
        burst = np.convolve(burst, [0.5, 0.5], mode="same")  # slightly dull the attack
        y[1:period + 1] = burst
        gain = 0.996
        for b in range(1, blocks):
            start = 1 + b * period
            prev = y[start - period:start]
            prev_shift = y[start - period - 1:start - 1]
            y[start:start + period] = gain * 0.5 * (prev + prev_shift)
        out = y[1:total + 1]
        # the loop sounds at sr / (period + 0.5); read it at the rate that gives the exact pitch
        ratio = (period + 0.5) / (exact + 0.5)
        positions = np.arange(int((total - 1) / ratio)) * ratio
        out = np.interp(positions, np.arange(total), out)
        out = out / (np.max(np.abs(out)) + 1e-9)
        self._pluck_cache[pitch] = out
        return out[:n]

    # -- instruments ---------------------------------------------------------------------------
    def note(self, instrument: str, pitch: int, duration_s: float, velocity: float) -> np.ndarray:
        """One note ``[N]`` of ``instrument`` lasting ``duration_s`` (plus its release).

        Renders are cached per (instrument, pitch, duration in samples): repeated chords and bass
        notes cost one render per clip.
        """
        render = _RENDERERS.get(instrument)
        if render is None:
            raise ValueError(f"unknown instrument {instrument!r}; known: {sorted(_RENDERERS)}")
        key = (instrument, pitch, self._n(duration_s))
        sound = self._note_cache.get(key)
        if sound is None:
            sound = self._note_cache[key] = render(self, pitch, duration_s)
        return velocity * sound

    def _plucked(self, pitch: int, duration_s: float) -> np.ndarray:
        hold = self._n(duration_s)
        n = hold + self._n(0.08)
        return _release_tail(self._karplus_strong(pitch, n), hold, self.sample_rate, 0.08)

    def _piano(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.15)
        bright = _table_osc("piano_bright", f, n, sr, 16)
        dull = _table_osc("piano_dull", f, n, sr, 6)
        tau = 0.9 * (261.6 / f) ** 0.4
        env_b = _exp_decay(n, sr, 0.12)
        env_d = _exp_decay(n, sr, tau)
        attack = np.clip(np.arange(n) / (0.003 * sr), 0.0, 1.0)
        sig = (bright * env_b * 0.6 + dull * env_d) * attack
        return _release_tail(sig, hold, sr, 0.15) * 0.7

    def _organ(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.05)
        t = np.arange(n) / sr
        sig = _table_osc("organ", f, n, sr, 8)
        tremolo = 1.0 + 0.08 * np.sin(2 * np.pi * 6.0 * t)
        env = _adsr(n, sr, 0.01, 0.02, 0.9, 0.05, hold)
        return sig * env * tremolo * 0.6

    def _bass(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.05)
        t = np.arange(n) / sr
        w = 2 * np.pi * f * t
        sig = np.sin(w) + 0.3 * np.sin(2 * w) + 0.12 * np.sin(3 * w)
        env = _adsr(n, sr, 0.005, 0.25, 0.6, 0.05, hold)
        return sig * env * 0.8

    def _pad(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.4)
        sig = sum(_table_osc("saw", f * d, n, sr, 12, phase0=p)
                  for d, p in ((1.0, 0.0), (1.004, 0.33), (0.996, 0.66))) / 3.0
        env = _adsr(n, sr, min(0.35, 0.5 * duration_s), 0.2, 0.8, 0.4, hold)
        return sig * env * 0.5

    def _bells(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.6)
        t = np.arange(n) / sr
        index = 1.2 * _exp_decay(n, sr, 0.3)
        sig = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * 2.0 * f * t))
        if 2.76 * f < 0.45 * sr:  # a weak inharmonic partial that decays fast: the "ring"
            sig += 0.2 * np.sin(2 * np.pi * 2.76 * f * t) * _exp_decay(n, sr, 0.25)
        env = _exp_decay(n, sr, 0.9) * np.clip(np.arange(n) / (0.002 * sr), 0, 1)
        return _release_tail(sig * env, hold, sr, 0.6) * 0.6

    def _synth_lead(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.05)
        t = np.arange(n) / sr
        depth = 0.006 * np.clip((t - 0.15) / 0.2, 0.0, 1.0)
        freq = f * (1.0 + depth * np.sin(2 * np.pi * 5.5 * t))
        sig = _table_osc("square", freq, n, sr, 15)
        env = _adsr(n, sr, 0.01, 0.1, 0.75, 0.05, hold)
        return sig * env * 0.45

    def _marimba(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        n = self._n(min(duration_s, 0.6) + 0.3)
        t = np.arange(n) / sr
        sig = np.sin(2 * np.pi * f * t) * _exp_decay(n, sr, 0.25)
        if 4 * f < 0.45 * sr:
            sig += 0.35 * np.sin(2 * np.pi * 4 * f * t) * _exp_decay(n, sr, 0.04)
        return sig * np.clip(np.arange(n) / (0.001 * sr), 0, 1)

    def _flute(self, pitch: int, duration_s: float) -> np.ndarray:
        sr, f = self.sample_rate, midi_to_hz(pitch)
        hold = self._n(duration_s)
        n = hold + self._n(0.06)
        t = np.arange(n) / sr
        freq = f * (1.0 + 0.004 * np.sin(2 * np.pi * 5.0 * t) * np.clip((t - 0.1) / 0.2, 0, 1))
        phase = 2 * np.pi * np.cumsum(freq) / sr
        sig = np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.05 * np.sin(3 * phase)
        noise = self.rng.standard_normal(n) * 0.03
        env = _adsr(n, sr, 0.06, 0.05, 0.85, 0.06, hold)
        return (sig + noise) * env * 0.6

    # -- drums ---------------------------------------------------------------------------------
    def drum_kit(self) -> dict[str, np.ndarray]:
        """One sample per drum ``{name: [N]}`` for this clip."""
        sr = self.sample_rate
        n = self._n(0.35)
        t = np.arange(n) / sr
        freq = 45.0 + 110.0 * np.exp(-t / 0.03)
        kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * _exp_decay(n, sr, 0.12)
        kick[: self._n(0.002)] += self.rng.uniform(-0.3, 0.3, self._n(0.002))

        n = self._n(0.25)
        b, a = signal.butter(2, [1200 / (sr / 2), min(0.95, 7000 / (sr / 2))], btype="band")
        noise = signal.lfilter(b, a, self.rng.standard_normal(n))
        t = np.arange(n) / sr
        snare = (noise / (np.max(np.abs(noise)) + 1e-9) * _exp_decay(n, sr, 0.06)
                 + 0.5 * np.sin(2 * np.pi * 185.0 * t) * _exp_decay(n, sr, 0.04))

        n = self._n(0.08)
        b, a = signal.butter(2, min(0.95, 7500 / (sr / 2)), btype="high")
        noise = signal.lfilter(b, a, self.rng.standard_normal(n))
        hat = noise / (np.max(np.abs(noise)) + 1e-9) * _exp_decay(n, sr, 0.015)
        return {"kick": kick, "snare": snare * 0.7, "hat": hat * 0.35}


_RENDERERS = {
    "plucked synth": Voices._plucked,
    "piano": Voices._piano,
    "organ": Voices._organ,
    "bass": Voices._bass,
    "pad": Voices._pad,
    "bells": Voices._bells,
    "synth lead": Voices._synth_lead,
    "marimba": Voices._marimba,
    "flute": Voices._flute,
}
INSTRUMENTS = tuple(_RENDERERS)


class Mixer:
    """A float64 track ``[num_samples]`` that notes and hits are added into at their onsets."""

    def __init__(self, num_samples: int, sample_rate: int) -> None:
        self.buffer = np.zeros(num_samples)
        self.sample_rate = sample_rate

    def add(self, sound: np.ndarray, onset_s: float, gain: float = 1.0) -> None:
        start = int(round(onset_s * self.sample_rate))
        if start >= self.buffer.shape[0]:
            return
        end = min(self.buffer.shape[0], start + sound.shape[0])
        self.buffer[start:end] += gain * sound[: end - start]
