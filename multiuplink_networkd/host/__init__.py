"""Everything that changes the host: the one file writer, the netfilter and sysctl loaders, networkd, apply.

Works from rendered files and the manifest only; never reads the user's configuration.
"""
