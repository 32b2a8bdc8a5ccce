"""The root conftest.py makes nbval execute cells with store_history=True, so that a trailing ';' silences a
cell's result under nbval as it does in Jupyter (IPython reads the ';' from the stored history)."""
import pytest


def test_nbval_executes_cells_with_history():
    kernel_module = pytest.importorskip("nbval.kernel")
    sent = {}

    class FakeClient:
        def execute(self, code, **kwargs):
            sent.update(kwargs, code=code)
            return "msg-id"

    fake = type("K", (), {"kc": FakeClient()})()
    assert kernel_module.RunningKernel.execute_cell_input(fake, "check(f);") == "msg-id"
    assert sent["store_history"] is True and sent["code"] == "check(f);" and sent["stop_on_error"] is False


def test_ipython_reads_the_semicolon_from_the_stored_cell():
    displayhook = pytest.importorskip("IPython.core.displayhook")
    assert displayhook.DisplayHook.semicolon_at_end_of_expression("x = 1\ncheck(f);\n")
    assert not displayhook.DisplayHook.semicolon_at_end_of_expression("check(f)\n")
