"""Puhui (普惠): an open-source platform for digital lending to small and micro enterprises."""

__version__ = "0.1.0"
