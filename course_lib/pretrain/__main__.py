"""``python -m course_lib.pretrain gpt|bert --text FILE --out DIR ...`` (see cli.py, or --help)."""

from .cli import main

raise SystemExit(main())
