"""Builds the optional C extension unrolled.nn._fused (the cells' fused step kernels; see nn/fused.py).

Everything else about the package is in pyproject.toml. ``optional=True``: where no C compiler or Python
headers are available, the install goes on without the extension and the cells use their NumPy kernels.
"""

import sys

from setuptools import Extension, setup

# -fno-trapping-math lets GCC turn the kernels' branch-free selects into vector blends (the code never
# reads floating-point exception flags); -fno-math-errno lets it use the CPU's square root in vector loops
# (the code never reads errno; results are the same correctly rounded values).
compile_args = [] if sys.platform == "win32" else ["-O3", "-fno-trapping-math", "-fno-math-errno", "-pthread"]
link_args = [] if sys.platform == "win32" else ["-pthread"]  # the time loops' threads

setup(
    ext_modules=[
        Extension(
            "unrolled.nn._fused",
            ["src/unrolled/nn/_fused.c"],
            depends=["src/unrolled/nn/_fused_kernels.h"],  # the kernels, included by _fused.c
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            optional=True,
        )
    ]
)
