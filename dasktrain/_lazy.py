"""Re-export public names from private modules, importing each module on first use."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, names: dict[str, str]):
    """Return ``(__getattr__, __dir__, __all__)`` for `package`.

    `names` maps each public name to the module (relative to `package`) that
    defines it. Importing the package stays cheap, and a public name costs its
    module's import only when it is first used.
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(names[name], package)
        value = getattr(module, name)
        importlib.import_module(package).__dict__[name] = value
        return value

    def __dir__():
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
