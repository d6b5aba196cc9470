"""``python -m vaetools_pipelines``: the ``vaetools`` command."""

from vaetools_pipelines.launch import main

main()
