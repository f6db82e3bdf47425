"""Python helpers around the `gigascale` binary (see `gigascale.dask`)."""

__version__ = "0.1.0"
