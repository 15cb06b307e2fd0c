"""Corpora the course generates itself: nothing is downloaded, everything is deterministic from a seed.

- ``stories``: the story world (notebooks 03-05) and its mood task.
- ``translation``: the Chinese-English corpus (notebooks 01, 02, 05).
- ``folders``: a folder of labelled text files as a PyTorch Dataset (notebook 05); import it
  from ``course_lib.data.folders`` (it needs torch, the corpora do not).
- ``images``: a drawn folder of ant and bee pictures and the Dataset that reads it (notebook 05);
  import it from ``course_lib.data.images``.
"""

from .stories import (FEELINGS, MOOD_TEXTS_PER_MOOD, MOODS, NOTES_STORY, MoodExample, MoodTask, Story, StoryCorpus,
                      entropy_floor, generate_story, held_out_entropy_floor, load_text, make_mood_task,
                      make_story_corpus, probability_mass)
from .translation import (MAX_SENTENCES, NOTES_EXAMPLES, SentencePair, TranslationCorpus, generate_pair,
                          make_translation_corpus)

__all__ = ["NOTES_EXAMPLES", "SentencePair", "TranslationCorpus", "generate_pair", "make_translation_corpus",
           "MAX_SENTENCES", "Story", "StoryCorpus", "MoodExample", "MoodTask", "MOODS", "FEELINGS", "NOTES_STORY",
           "generate_story", "make_story_corpus", "entropy_floor", "held_out_entropy_floor", "probability_mass",
           "make_mood_task", "MOOD_TEXTS_PER_MOOD", "load_text"]
