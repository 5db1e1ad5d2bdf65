"""numba-compiled copies of the simulator's kernels; importing this module imports numba.

The engine imports it only for inputs long enough to repay it: importing numba and loading its on-disk
cache costs about half a second, compiling from an empty cache several seconds, while a command-line
backtest of a few thousand daily bars finishes sooner in plain Python. ``kernels`` here is a module of
the same functions compiled (lazily, cached on disk); the plain ones in ``quantdesk.backtest.kernels``
stay as they are, so both paths remain available in one process and the tests run both.
"""

import sys
import types

from numba import njit

from quantdesk.backtest import kernels as plain


def _compiled_copy() -> types.ModuleType:
    module = types.ModuleType(f"{__name__}.kernels", "numba-compiled copies of quantdesk.backtest.kernels")
    module.__dict__.update({key: value for key, value in vars(plain).items() if not key.startswith("__")})
    # numba finds a cached function's globals again by importing its module by name.
    sys.modules[module.__name__] = module
    # The kernels call each other through their module's globals, which numba reads when it compiles a
    # caller: each copy's globals are the new module, so compiled code calls compiled code.
    for name in plain.COMPILED:
        function = getattr(plain, name)
        copy = types.FunctionType(function.__code__, module.__dict__, name, function.__defaults__)
        copy.__qualname__ = function.__qualname__
        setattr(module, name, njit(cache=True)(copy))
    return module


kernels = _compiled_copy()
