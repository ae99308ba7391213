"""Keep TorchDynamo unimported in a sandboxed process until something compiles.

Run (as a file: ``exec``, not ``import``) at the start of the verification process and of
the notebook run's kernel, both inside the sandbox, before any student code.

Why: part of torch's Python reference implementations (the type-promotion wrapper of
``torch._refs``, which meta tensors go through) is decorated with ``torch._disable_dynamo``,
which imports ``torch._dynamo`` on its first call: about 1.4 s of CPU in every process that
runs a check on ``meta`` tensors, twice per graded notebook.  Disabling Dynamo for a
function matters only while Dynamo can be compiling, and it cannot before it is imported.
So each such wrapper is given, where torch caches its disabled function, a stand-in that
calls the function directly while ``torch._dynamo`` is not imported, and otherwise makes
and caches torch's own disabled function exactly as torch would (so a notebook that calls
``torch.compile`` gets torch's behaviour from then on).

If torch's structure differs (another version), nothing is changed: the processes are
only slower.  ``tests/test_lazy_dynamo.py`` checks that a meta check leaves Dynamo
unimported.
"""


def _defer_dynamo_import() -> int:
    """Install the stand-ins; returns how many wrappers got one."""
    import gc
    import sys
    import types

    import torch
    import torch._compile

    if "torch._dynamo" in sys.modules:
        return 0
    probe = torch._compile._disable_dynamo(lambda: None)
    code = getattr(probe, "__code__", None)
    if code is None or set(code.co_freevars) != {"fn", "recursive"}:
        return 0
    where = {name: i for i, name in enumerate(code.co_freevars)}

    def stand_in(fn, recursive):
        def call(*args, **kwargs):
            if "torch._dynamo" not in sys.modules:
                return fn(*args, **kwargs)
            import torch._dynamo

            # What torch._compile's wrapper does when it finds no cached function.
            disabled = torch._dynamo.disable(fn, recursive, wrapping=False)
            fn.__dynamo_disable = disabled
            return disabled(*args, **kwargs)

        return call

    count = 0
    for obj in gc.get_objects():
        if type(obj) is not types.FunctionType or obj.__code__ is not code:
            continue
        fn = obj.__closure__[where["fn"]].cell_contents
        recursive = obj.__closure__[where["recursive"]].cell_contents
        if getattr(fn, "__dynamo_disable", None) is None:
            fn.__dynamo_disable = stand_in(fn, recursive)
            count += 1
    return count


_defer_dynamo_import()
del _defer_dynamo_import  # the kernel runs this file in the notebook's namespace
