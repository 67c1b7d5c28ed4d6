"""Build script: only declares the cffi extension; metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["csrc/ffi_build.py:ffibuilder", "csrc/fec_build.py:ffibuilder"])
