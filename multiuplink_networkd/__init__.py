"""multiuplink-networkd: answer every connection out of the uplink it arrived on."""

__version__ = "0.1.0"
