"""hwgen: multiplier-free neural networks from PyTorch to verified open-toolchain FPGA designs.

The sub-packages live beside this folder in a checkout (``sw/``, ``hw/``, ``sim/``, ``boards/``,
mapped by pyproject.toml's ``package-dir``); an install puts them inside it. Imported from a
checkout (the checkout root on ``sys.path``, e.g. ``python -c "import hwgen.sw"`` run there),
this package would shadow an installed copy and find no sub-package, so its search path then
takes in the checkout root too: ``hwgen.sw`` is ``sw/``, and the modules in this folder
(``hwgen.build``, ...) still come first.
"""

from pathlib import Path

__version__ = "0.1.0"


def _checkout_root() -> Path | None:
    """The checkout this folder lies in, or None where it is an installed copy."""
    root = Path(__file__).resolve().parent.parent
    try:
        pyproject = (root / "pyproject.toml").read_text()
    except OSError:
        return None
    if 'name = "hwgen"' in pyproject and (root / "sw" / "core").is_dir():
        return root
    return None


_root = _checkout_root()
if _root is not None and str(_root) not in __path__:
    __path__.append(str(_root))
del _root
