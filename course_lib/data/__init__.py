"""Corpora the course generates itself: nothing is downloaded, everything is deterministic from a seed."""

from .stories import (FEELINGS, MOODS, NOTES_STORY, MoodExample, MoodTask, Story, StoryCorpus, entropy_floor,
                      generate_story, load_text, make_mood_task, make_story_corpus)
from .translation import (NOTES_EXAMPLES, SentencePair, TranslationCorpus, generate_pair,
                          make_translation_corpus)

__all__ = ["NOTES_EXAMPLES", "SentencePair", "TranslationCorpus", "generate_pair", "make_translation_corpus",
           "Story", "StoryCorpus", "MoodExample", "MoodTask", "MOODS", "FEELINGS", "NOTES_STORY", "generate_story",
           "make_story_corpus", "entropy_floor", "make_mood_task", "load_text"]
