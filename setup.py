"""Build sysvkit's compiled core (Cython) and the package."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "sysvkit._core",
        sources=["csrc/_core.pyx"],
        include_dirs=["csrc"],
        libraries=["rt"],
        define_macros=[("_GNU_SOURCE", "1")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["csrc"],
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
