"""The music of ``synthcaps``: genres, keys, chord progressions, melodies, drum patterns, captions.

``compose(rng, duration_s)`` draws one clip's attributes and its score (note events); ``caption``
writes its description from those attributes. Pure numpy, no audio: ``synthcaps_audio`` renders.

Conventions: pitches are MIDI numbers; times are seconds from the clip start; a bar is 4 beats and
the drum grid has 16 steps per bar. Keys use sharp names (``C#``, not ``Db``); modes are ``major``
and ``minor`` (natural minor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# progressions as 0-based scale degrees (diminished triads avoided)
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 3), (5, 3, 0, 4), (0, 3, 0, 4), (0, 2, 3, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 2, 5, 6)),
}
DRUM_PATTERNS = {  # 16th-note steps per bar
    "four_on_the_floor": {"kick": (0, 4, 8, 12), "snare": (4, 12), "hat": (2, 6, 10, 14)},
    "backbeat": {"kick": (0, 8, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "boom_bap": {"kick": (0, 7, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "one_drop": {"kick": (8,), "snare": (8,), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "light": {"kick": (0, 8), "snare": (), "hat": (0, 4, 8, 12)},
}
DRUM_PHRASES = {
    "four_on_the_floor": ("a steady kick", "a four-on-the-floor beat", "a pounding kick drum"),
    "backbeat": ("a driving backbeat", "punchy drums", "a tight rock beat"),
    "boom_bap": ("a laid-back boom bap beat", "dusty drums", "a head-nodding beat"),
    "one_drop": ("a one-drop groove", "a relaxed one-drop beat"),
    "light": ("light percussion", "soft brushed drums"),
    None: ("no drums", "without percussion", "no percussion at all"),
}


@dataclass(frozen=True)
class Genre:
    name: str
    bpm: tuple[int, int]
    drums: tuple[str | None, ...]
    leads: tuple[str, ...]
    harmony: tuple[str, ...]
    minor_p: float
    noun: tuple[str, ...] = ("track", "tune", "piece")


GENRES = (
    Genre("techno", (122, 136), ("four_on_the_floor",), ("plucked synth", "synth lead", "bells"),
          ("pad",), 0.8, ("groove", "track", "banger")),
    Genre("house", (118, 127), ("four_on_the_floor",), ("piano", "organ", "synth lead"),
          ("piano", "pad", "organ"), 0.4, ("groove", "track", "tune")),
    Genre("hip hop", (82, 98), ("boom_bap",), ("piano", "bells", "flute"), ("pad", "piano"), 0.7,
          ("beat", "instrumental", "track")),
    Genre("rock", (104, 140), ("backbeat",), ("organ", "synth lead", "plucked synth"), ("organ", "piano"),
          0.4, ("song", "jam", "track")),
    Genre("ambient", (60, 80), (None,), ("bells", "flute", "marimba"), ("pad",), 0.5,
          ("soundscape", "piece", "texture")),
    Genre("classical", (66, 100), (None,), ("piano", "flute", "marimba"), ("piano", "organ"), 0.4,
          ("piece", "miniature", "etude")),
    Genre("folk", (90, 120), ("light",), ("plucked synth", "flute", "marimba"), ("organ", "piano"), 0.3,
          ("tune", "song", "ballad")),
    Genre("reggae", (70, 90), ("one_drop",), ("organ", "piano"), ("organ",), 0.4, ("riddim", "groove")),
    Genre("pop", (100, 124), ("backbeat", "four_on_the_floor"), ("synth lead", "piano", "plucked synth"),
          ("pad", "piano"), 0.35, ("song", "track", "tune")),
    Genre("chiptune", (132, 160), ("backbeat", "four_on_the_floor"), ("synth lead",), ("synth lead",),
          0.4, ("tune", "track", "loop")),
)
GENRE_BY_NAME = {g.name: g for g in GENRES}
MOODS = {
    "major": ("happy", "uplifting", "bright", "cheerful", "warm", "hopeful"),
    "minor": ("melancholic", "dark", "mysterious", "moody", "brooding", "wistful"),
    "fast": ("energetic", "upbeat", "driving"),
    "slow": ("calm", "relaxed", "dreamy", "peaceful"),
}


@dataclass
class Note:
    instrument: str
    pitch: int
    onset_s: float
    duration_s: float
    velocity: float
    role: str  # "melody", "harmony" or "bass"


@dataclass
class Clip:
    """One clip's attributes and score."""

    genre: str
    bpm: int
    key: str
    mode: str
    lead: str
    harmony: str
    has_bass: bool
    drums: str | None
    moods: list[str]
    chords: list[dict]
    notes: list[Note] = field(default_factory=list)
    hits: list[tuple[str, float, float]] = field(default_factory=list)  # (drum, onset_s, velocity)

    @property
    def instruments(self) -> list[str]:
        names = [self.lead] + ([self.harmony] if self.harmony != self.lead else [])
        return names + (["bass"] if self.has_bass else [])

    @property
    def melody(self) -> list[Note]:
        return [n for n in self.notes if n.role == "melody"]


def _scale_pitches(root_pc: int, mode: str, low: int, high: int) -> list[int]:
    pcs = {(root_pc + s) % 12 for s in SCALES[mode]}
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def _triad(root_pc: int, mode: str, degree: int) -> tuple[list[int], str]:
    """Pitch classes of the diatonic triad on ``degree`` and its symbol (``Am``, ``F``, ``Bdim``)."""
    scale = SCALES[mode]
    pcs = [(root_pc + scale[(degree + i) % 7]) % 12 for i in (0, 2, 4)]
    third = (pcs[1] - pcs[0]) % 12
    fifth = (pcs[2] - pcs[0]) % 12
    quality = "m" if third == 3 and fifth == 7 else ("dim" if fifth == 6 else "")
    return pcs, PITCH_NAMES[pcs[0]] + quality


def compose(rng: np.random.Generator, duration_s: float) -> Clip:
    """Draw one clip: attributes, chords (one per bar), a melody, bass, harmony and drum hits."""
    genre = GENRES[rng.integers(len(GENRES))]
    bpm = int(rng.integers(genre.bpm[0], genre.bpm[1] + 1))
    mode = "minor" if rng.random() < genre.minor_p else "major"
    root_pc = int(rng.integers(12))
    lead = str(rng.choice(genre.leads))
    harmony_options = [h for h in genre.harmony if h != lead] or list(genre.harmony)
    harmony = str(rng.choice(harmony_options))
    drums = genre.drums[rng.integers(len(genre.drums))]
    has_bass = genre.name not in ("classical",) and rng.random() < 0.9
    tempo_moods = MOODS["fast"] if bpm >= 115 else MOODS["slow"] if bpm <= 90 else ()
    pool = list(MOODS[mode]) + list(tempo_moods)
    moods = [str(m) for m in rng.choice(pool, size=2, replace=False)]

    beat_s = 60.0 / bpm
    bar_s = 4 * beat_s
    num_bars = int(np.ceil(duration_s / bar_s))
    progression = PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))]
    chords = []
    clip = Clip(genre.name, bpm, PITCH_NAMES[root_pc], mode, lead, harmony, has_bass, drums, moods, chords)
    # harmony: one chord per bar, voiced around middle C; bass on the root
    for bar in range(num_bars):
        degree = progression[bar % len(progression)]
        pcs, symbol = _triad(root_pc, mode, degree)
        onset = bar * bar_s
        chords.append({"symbol": symbol, "root": PITCH_NAMES[pcs[0]], "onset_s": round(onset, 4),
                       "duration_s": round(bar_s, 4)})
        voicing = sorted(52 + (pc - 52) % 12 for pc in pcs)
        if harmony in ("piano", "synth lead"):  # rhythmic comping on beats 1 and 3
            for half in (0, 2):
                for p in voicing:
                    clip.notes.append(Note(harmony, p, onset + half * beat_s, 1.8 * beat_s, 0.45, "harmony"))
        else:
            for p in voicing:
                clip.notes.append(Note(harmony, p, onset, bar_s, 0.45, "harmony"))
        if has_bass:
            bass_pitch = 36 + (pcs[0] - 36) % 12
            step = 2 if bpm < 100 else 1  # half notes when slow, quarter notes otherwise
            for beat in range(0, 4, step):
                clip.notes.append(Note("bass", bass_pitch, onset + beat * beat_s, 0.9 * step * beat_s, 0.8,
                                       "bass"))
    # melody: eighth-note grid, chord tones on strong beats, a bounded walk on the scale
    scale = _scale_pitches(root_pc, mode, 60, 84)
    idx = int(rng.integers(len(scale) // 3, 2 * len(scale) // 3))
    t = 0.0
    eighth = beat_s / 2
    while t < duration_s - 1e-6:
        length = int(rng.choice([1, 2, 2, 3, 4], p=[0.3, 0.35, 0.1, 0.1, 0.15]))
        bar = int(t // bar_s)
        on_beat = abs((t / beat_s) - round(t / beat_s)) < 1e-6
        if rng.random() < 0.12:
            t += length * eighth  # rest
            continue
        if on_beat:
            degree = progression[bar % len(progression)]
            chord_pcs, _ = _triad(root_pc, mode, degree)
            candidates = [i for i, p in enumerate(scale) if p % 12 in chord_pcs and abs(i - idx) <= 3]
            if candidates:
                idx = int(rng.choice(candidates))
        else:
            idx = int(np.clip(idx + rng.choice([-2, -1, -1, 1, 1, 2]), 0, len(scale) - 1))
        velocity = float(rng.uniform(0.75, 1.0))
        clip.notes.append(Note(lead, scale[idx], t, 0.95 * length * eighth, velocity, "melody"))
        t += length * eighth
    # drums
    if drums is not None:
        pattern = DRUM_PATTERNS[drums]
        step_s = bar_s / 16
        for bar in range(num_bars):
            for drum, steps in pattern.items():
                for s in steps:
                    onset = bar * bar_s + s * step_s
                    if onset < duration_s:
                        accent = 1.0 if s % 4 == 0 else 0.8
                        clip.hits.append((drum, onset, accent * float(rng.uniform(0.85, 1.0))))
    return clip


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def caption(clip: Clip, rng: np.random.Generator) -> str:
    """A description that names genre, key and mode, BPM, every instrument, the drums and the moods."""
    genre = GENRE_BY_NAME[clip.genre]
    noun = str(rng.choice(genre.noun))
    key = f"{clip.key} {clip.mode}"
    drums = str(rng.choice(DRUM_PHRASES[clip.drums]))
    m1, m2 = clip.moods
    lead_adj = str(rng.choice(["", "lively ", "gentle ", "catchy ", "soaring "]))
    others = [i for i in clip.instruments if i != clip.lead]
    support = _join([f"{rng.choice(['warm ', 'soft ', 'deep ', ''])}{i}" for i in others]) if others else ""
    lead_phrase = f"{lead_adj}{clip.lead}" + ("" if clip.lead.endswith("lead") else " lead")
    tempo = str(rng.choice([f"{clip.bpm} BPM", f"{clip.bpm} beats per minute", f"{clip.bpm} bpm"]))
    templates = [
        lambda: (f"{_article(m1).capitalize()} {m1} {clip.genre} {noun} in {key} at {tempo} with "
                 f"{_article(lead_phrase)} {lead_phrase}" + (f", {support}" if support else "")
                 + f" and {drums}. The mood is {m2}."),
        lambda: (f"{m1.capitalize()} and {m2} {clip.genre} {noun}, {tempo}, {key}. A {clip.lead} "
                 f"carries the melody" + (f" over {support}" if support else "") + f"; {drums}."),
        lambda: (f"A {clip.genre} {noun} in the key of {key} played at {tempo}: {_article(lead_phrase)} "
                 f"{lead_phrase}" + (f" with {support}" if support else "") + f", {drums}. "
                 f"It feels {m1} and {m2}."),
        lambda: (f"{clip.lead.capitalize()} melody in {key}, {clip.genre} style, {tempo}, "
                 + (f"{support}, " if support else "") + f"{drums}; {m1}, {m2}."),
        lambda: (f"This {m1} {noun} is {clip.genre} at {tempo} in {key}, featuring {_join(clip.instruments)} "
                 f"and {drums}, with {_article(m2)} {m2} feel."),
    ]
    text = templates[rng.integers(len(templates))]()
    return " ".join(text.split())
