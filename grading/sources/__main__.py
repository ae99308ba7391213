"""``python -m grading.sources``: rewrite the instructor notebooks of ``solutions/``."""

from . import main

main()
