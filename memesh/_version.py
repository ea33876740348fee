"""The package version (PEP 440, as pip reads it) and the client/daemon protocol number.

Kept in a module of its own, with no imports, so setup.py can read it without importing
memesh and the stdio proxy can check versions without loading the version machinery.
"""
__version__ = "0.1.0"

#: The client <-> daemon contract. Bump it when an old peer could misread a new one.
PROTOCOL_VERSION = 1

#: The oldest client package version this daemon serves (advertised in the lock record).
MIN_CLIENT_VERSION = "0.1.0"
