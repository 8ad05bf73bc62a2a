"""``python -m worker`` is the ``edusync`` command."""

from worker.cli import main

main()
