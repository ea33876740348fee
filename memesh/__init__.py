"""memesh: one shared, long-lived memory daemon for every AI coding session of a user.

``import memesh`` is cheap on purpose (the stdio proxy imports this package on every
window start); ``connect`` pulls in the client machinery only when called.
"""
from memesh._version import __version__

__all__ = ["__version__", "connect"]


def connect(**kwargs):
    """Attach to the user's daemon (starting it if needed) and return a ``Mesh`` handle.

    See :func:`memesh.daemon.client.connect` for the arguments.
    """
    from memesh.daemon.client import connect as _connect

    return _connect(**kwargs)
