"""Corpora the course generates itself: nothing is downloaded, everything is deterministic from a seed."""

from .translation import (NOTES_EXAMPLES, SentencePair, TranslationCorpus, generate_pair,
                          make_translation_corpus)

__all__ = ["NOTES_EXAMPLES", "SentencePair", "TranslationCorpus", "generate_pair", "make_translation_corpus"]
