"""Every public function documents each of its arguments with an inline comment (fastcore docments):
a function in a module's `__all__`, defined in that module, has a docment for every parameter but `self`, `*args`
and `**kwargs` (any names). Methods of public classes are not checked."""
import importlib, inspect, pkgutil
import numpy as np, pytest
from fastcore.docments import docments
import pssr

VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)  # `*args`, `**kwargs`: exempt, as `self`
MODULES = sorted(m.name for m in pkgutil.iter_modules(pssr.__path__) if not m.name.startswith('_'))

def missing_docments(f) -> list[str]:
    "The parameters of `f` (but `self`, `*args`, `**kwargs`) without a docments comment."
    try: d = docments(f)
    except ValueError as e: return [f'(docments cannot read it: {e}; e.g. a numpy array as a default)']
    return [n for n, p in inspect.signature(f).parameters.items() if n != 'self' and p.kind not in VARIADIC and not d.get(n)]

def public_functions(mod) -> list:
    "The functions named in `mod.__all__` that `mod` defines (re-exports are checked where they are defined)."
    fs = [getattr(mod, n, None) for n in getattr(mod, '__all__', [])]
    return [f for f in fs if inspect.isfunction(f) and f.__module__ == mod.__name__]

def undocumented(name: str) -> list[str]:
    "'module.function: arg, arg' for each public function of `pssr.<name>` with undocumented arguments."
    mod = pytest.importorskip(f'pssr.{name}')  # a module whose optional extra is absent is skipped
    return [f'pssr.{name}.{f.__name__}: {", ".join(m)}' for f in public_functions(mod) if (m := missing_docments(f))]

def test_checker_finds_a_missing_comment():
    def f(a, # documented
          b, c=1, *args, **kwargs): pass
    assert missing_docments(f) == ['b', 'c']
    def g(a=np.zeros(2)): pass  # fastcore's docments cannot compare an array default: reported, not a crash
    assert 'docments cannot read it' in missing_docments(g)[0]

@pytest.mark.parametrize('name', MODULES)
def test_arguments_documented(name):
    missing = undocumented(name)
    assert not missing, ('public functions need an inline comment per argument (fastcore docments):\n  '
                         + '\n  '.join(missing))
