"""``retrieval``: a memorization baseline that returns the training clip whose caption is nearest.

Nearest neighbour by TF-IDF cosine similarity over captions (our own few lines, no scikit-learn):
tokens are lower-cased runs of letters and digits; ``idf(t) = ln((1 + N) / (1 + df(t))) + 1``
(smoothed, as scikit-learn's default); vectors are L2-normalised; ties go to the training item that
sorts first by id. ``method: overlap`` uses the Jaccard overlap of token sets instead.

The training set is any registered dataset, named in the params (``train: {name: synthcaps, params:
{split: train}}``), opened through the harness context. A prompt whose id is also in the training set
is not allowed to retrieve itself (``exclude_same_id``, default true), so the baseline measures what
a lookup of *other* training audio scores.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from baselines._common import fingerprint_of, fit_length
from bench.api import AudioClip, Generator, Params, Prompt
from bench.audio import read_audio, resample

CODE_VERSION = "1"
_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class TfidfIndex:
    """TF-IDF vectors of a list of captions; ``nearest(text)`` -> (index, cosine similarity)."""

    def __init__(self, texts: Sequence[str]) -> None:
        docs = [Counter(tokenize(t)) for t in texts]
        df = Counter(tok for d in docs for tok in d)
        n = len(docs)
        self.idf = {tok: math.log((1 + n) / (1 + c)) + 1.0 for tok, c in df.items()}
        self.vectors = [self._vector(d) for d in docs]
        self.token_sets = [set(d) for d in docs]

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        v = {t: c * self.idf[t] for t, c in counts.items() if t in self.idf}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {t: x / norm for t, x in v.items()}

    def scores(self, text: str, method: str = "tfidf") -> np.ndarray:
        if method == "overlap":
            q = set(tokenize(text))
            return np.array([len(q & s) / (len(q | s) or 1) for s in self.token_sets])
        q = self._vector(Counter(tokenize(text)))
        return np.array([sum(w * v.get(t, 0.0) for t, w in q.items()) for v in self.vectors])


class DatasetRef(Params):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RetrievalGenerator(Generator):
    class Params(Params):
        train: DatasetRef
        method: Literal["tfidf", "overlap"] = "tfidf"
        exclude_same_id: bool = True
        sample_rate: int | None = Field(default=None, gt=0)

    _train: list[Prompt] | None = None
    _index: TfidfIndex | None = None

    def _train_set(self) -> list[Prompt]:
        if self._train is None:
            if self.context.open_dataset is None:
                raise RuntimeError("retrieval needs the harness context to open its training set")
            ds = self.context.open_dataset(self.params.train.name, self.params.train.params)
            train = [p for p in ds.prompts() if p.reference_path is not None]
            if not train:
                raise ValueError(f"training set {self.params.train.name!r} has no item with audio")
            self._train = sorted(train, key=lambda p: p.id)
        return self._train

    def check(self) -> list[str]:
        if self.context.open_dataset is None:
            return ["retrieval needs the harness context to open its training set"]
        try:
            return [f"training set: {m}" for m in
                    self.context.open_dataset(self.params.train.name, self.params.train.params).check()]
        except Exception as e:
            return [f"training set {self.params.train.name!r}: {e}"]

    def load(self, device: str = "cpu") -> None:
        self._index = TfidfIndex([p.text for p in self._train_set()])

    def fingerprint(self) -> str:
        train = [(p.id, p.text, str(p.reference_path)) for p in self._train_set()]
        return fingerprint_of("retrieval", CODE_VERSION, self.params, train=train)

    def nearest(self, prompt: Prompt) -> tuple[Prompt, float]:
        if self._index is None:
            self.load()
        train = self._train_set()
        scores = self._index.scores(prompt.text, self.params.method)
        if self.params.exclude_same_id:
            scores = np.where([p.id == prompt.id for p in train], -np.inf, scores)
        best = int(np.argmax(scores))  # first maximum: ties go to the smallest id
        return train[best], float(scores[best])

    def generate(self, prompts: Sequence[Prompt], seed: int, duration_s: float) -> list[AudioClip]:
        out = []
        for p in prompts:
            match, score = self.nearest(p)
            wav, sr = read_audio(match.reference_path)
            if self.params.sample_rate and self.params.sample_rate != sr:
                wav, sr = resample(wav, sr, self.params.sample_rate), self.params.sample_rate
            out.append(AudioClip(fit_length(wav, round(duration_s * sr)), sr, p.id, seed,
                                 meta={"retrieved_id": match.id, "similarity": score}))
        return out
