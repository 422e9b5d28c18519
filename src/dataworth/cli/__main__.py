"""``python -m dataworth.cli``: the same as the ``dataworth`` console script."""

from dataworth.cli import main

main()
