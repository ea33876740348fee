"""The daemon layer: election and lock, the manager server, lifecycle, spawning and the client."""
