"""Scaffolding shared by the fuzz tests (test_fuzz.py, test_fuzz_loaders.py, test_io_fuzz.py):
budgets of generated cases that each test asserts it ran, the hypothesis settings that go with
them, a hang guard and a per-module report of the cases run.

Examples are derandomized, so a run is reproducible; GDCORE_FUZZ_RANDOM=1 draws fresh ones and
GDCORE_FUZZ_SCALE=10 runs ten times as many.
"""
import collections
import contextlib
import faulthandler
import os

import pytest
from hypothesis import HealthCheck, Phase, settings

RANDOM = os.environ.get("GDCORE_FUZZ_RANDOM", "") not in ("", "0")
SCALE = float(os.environ.get("GDCORE_FUZZ_SCALE", "1"))

# no shrinking: a case is a few seeds, so a shrunk one reads no better, and a failing test would
# spend a minute of every CI run on it; note() describes each case instead
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


class CaseBudgets:
    """The generated cases the fuzz tests of one module must run and did run.

    Parameters
    ----------
    phases : tuple of hypothesis.Phase or None
        The phases each property runs; None keeps hypothesis's default (with shrinking).
    around : callable or None
        A context-manager factory each property runs inside (once per test, not per case).
    """

    def __init__(self, phases=None, around=None):
        self.budgets = {}  # test name -> generated cases it must run
        self.ran = collections.Counter()  # test name -> generated cases it did run
        self._phases = phases
        self._around = around if around is not None else contextlib.nullcontext

    def fuzz(self, budget):
        """Run a @given property for ``budget`` generated cases (times GDCORE_FUZZ_SCALE), and
        assert afterwards that it really did: a strategy that hypothesis cannot fill would
        otherwise pass with a handful of examples."""
        n_cases = max(1, round(budget * SCALE))
        phases = {} if self._phases is None else {"phases": self._phases}

        def decorate(prop):
            name = prop.__name__
            self.budgets[name] = budget
            prop.hypothesis.inner_test = self._counted(name, prop.hypothesis.inner_test)
            runner = settings(max_examples=n_cases, deadline=None, database=None,
                              derandomize=not RANDOM, print_blob=True,
                              suppress_health_check=list(HealthCheck), **phases)(prop)

            def test():
                self.ran[name] = 0
                with self._around():
                    runner()
                assert self.ran[name] >= n_cases, (
                    f"{name} ran {self.ran[name]} generated cases, not {n_cases}")

            test.__name__ = test.__qualname__ = name
            test.__module__, test.__doc__ = prop.__module__, prop.__doc__
            return test

        return decorate

    def _counted(self, name, inner):
        """``inner``, counting its calls in ``self.ran[name]``."""
        # Derandomized, hypothesis seeds its examples from the source of the inner test, which is
        # this function: its text and indentation are kept letter for letter as they stood in
        # each fuzz module before this one, so a run generates the very same cases as then.
        RAN = self.ran  # noqa: N806

        def counted(*args, **kwargs):
            RAN[name] += 1
            return inner(*args, **kwargs)

        return counted

    def report_fixture(self):
        """An autouse, module-scoped fixture that prints how many generated cases the module ran
        (verifiable next to the budgets); assign it to a name in the test module."""

        @pytest.fixture(autouse=True, scope="module")
        def report_case_count(request):
            yield
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            if reporter is None or capture is None or not self.ran:
                return
            with capture.global_and_fixture_disabled():  # as capsys.disabled(): past capture
                reporter.write_line(f"\n{request.module.__name__}: {sum(self.ran.values())} "
                                    f"generated cases ran (budgets {sum(self.budgets.values())})")

        return report_case_count


def hang_guard_fixture(seconds):
    """An autouse, module-scoped fixture under which a hang fails the run instead of stalling CI:
    after ``seconds``, dump every thread's stack and exit. Assign it to a name in the module."""

    @pytest.fixture(autouse=True, scope="module")
    def hang_guard():
        faulthandler.dump_traceback_later(seconds, exit=True)
        yield
        faulthandler.cancel_dump_traceback_later()

    return hang_guard
