"""Loaded by every pytest run in this repository (tests/ and notebooks/ alike), before tests/conftest.py.

nbval executes each notebook cell with ``store_history=False``, and IPython decides whether a trailing ``;``
silences a cell's result from the last *stored* history entry (``DisplayHook.quiet``). Under nbval an
exercise cell ending in ``check_x(x);`` therefore still displays ``True`` where Jupyter and nbclient (which
store history) show nothing, and every such cell fails with "Unexpected output fields from running code:
{'text/plain'}". Executing cells with ``store_history=True``, as Jupyter does, makes nbval see what the
notebook shows. (Nothing else changes: nbval does not compare execution counts.)
"""


def _nbval_stores_history():
    try:
        from nbval.kernel import RunningKernel
    except ImportError:                      # nbval not installed: nothing to adjust
        return
    if getattr(RunningKernel.execute_cell_input, "stores_history", False):
        return

    def execute_cell_input(self, cell_input, allow_stdin=None):
        return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)

    execute_cell_input.stores_history = True
    RunningKernel.execute_cell_input = execute_cell_input


_nbval_stores_history()
