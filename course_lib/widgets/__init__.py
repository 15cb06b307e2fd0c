"""The course's interactive widgets: controls over one picture (or HTML) redrawn in place.

Import them from their notebook's module, e.g. ``from course_lib.widgets.transformer import PositionExplorer``.

- ``base``: :class:`~course_lib.widgets.base.FigureWidget` and the rest of what every widget shares
  (``Widget``, ``HTMLWidget``, ``Blitter``, ``Memo``, ``widget_figure``, ``canvas_to_png``; the status
  line's ``status_note``, ``short_text``, ``MESSAGE_CHARS``; ``MAX_TYPED_WORDS``);
- ``attention`` (notebook 01): ``AttentionExplorer``, ``TranslationAttentionView``;
- ``transformer`` (notebook 02): ``ScalingExplorer``, ``PositionExplorer``, ``TransformerAttentionExplorer``,
  ``position_similarity``, ``ATTENTION_KINDS``;
- ``gpt`` (notebook 03): ``GenerationExplorer``, ``next_word_distribution``, ``continue_text``;
- ``bert`` (notebook 04): ``MaskingExplorer``, ``masking_html``, ``FillMaskExplorer``, ``fill_mask``,
  ``ModelView``, ``bert_attentions``, ``attention_grid``, ``head_roles``.

Every widget keeps its computation in plain functions (tested without a browser) and redraws by
updating artists and blitting (see ``base``), so a control answers in milliseconds. Whatever is
typed, a control's callback never raises: a text is cut to what the model reads (the status line
says so), and a text it cannot read leaves the last good picture with a short, escaped message.
"""
