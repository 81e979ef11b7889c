"""``python -m shepherd``: the same as the ``shepherd`` command."""

from shepherd.app import entrypoint

entrypoint()
