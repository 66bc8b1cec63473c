"""Errors whose message tells the user what happened and what to do."""


class FlowgenError(Exception):
    """Raised by flowgen's own checks with a message meant for the user: ``train.py`` and
    ``sample.py`` print it as one ``error:`` line and exit with code 2."""
