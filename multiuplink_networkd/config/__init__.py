"""Everything that turns the user's files into the model: YAML with positions, netplan's facts, the stanza.

Nothing here writes a file or touches the host.
"""
