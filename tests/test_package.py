"""`import gradlab` loads only what it must; every public name loads on first use.

What an import loads is seen in a fresh interpreter: in this process every module is long
imported.
"""

import json
import subprocess
import sys
import types

import pytest

import gradlab


def _fresh(code: str):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_import_gradlab_loads_neither_numpy_nor_its_modules():
    loaded = _fresh("import json, sys, gradlab\n"
                    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('gradlab', 'numpy'))))")
    assert loaded == ["gradlab", "gradlab._errors", "gradlab._version"]


def test_check_compare_and_explain_stay_functions_when_their_modules_are_imported_first():
    # Importing gradlab.check.core binds the subpackage gradlab.check on the package; the
    # function of that name must win, as it did when `import gradlab` loaded everything.
    kinds = _fresh("import json, sys, gradlab.check.core, gradlab.compare, gradlab.explain, gradlab\n"
                   "from gradlab import check\n"
                   "print(json.dumps([type(gradlab.check).__name__, type(gradlab.compare).__name__,\n"
                   "                  type(gradlab.explain).__name__, check is sys.modules['gradlab.check.core'].check]))")
    assert kinds == ["function", "function", "function", True]


def test_every_public_name_is_there_and_listed():
    assert all(hasattr(gradlab, name) for name in gradlab.__all__)
    assert set(gradlab.__all__) <= set(dir(gradlab))
    assert gradlab.NUMERIC_METHODS == gradlab.sources.numeric.METHODS
    assert isinstance(gradlab.data, types.ModuleType) and gradlab.data.__name__ == "gradlab.data"


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no_such_name"):
        gradlab.no_such_name
