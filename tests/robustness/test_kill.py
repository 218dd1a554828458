"""Kill tests: ``unrolled train`` stopped by SIGINT, SIGTERM or SIGKILL at random moments, and killed inside its
checkpoint saves, keeps the previous model or writes a complete new one, and resumes to the same weights as a
run never interrupted (tests/robustness/kill_trials.py; benchmarks/resume.py runs ten trials per task)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.robustness.kill_trials import prepare, run_trial

TASKS = ["classify", "lm", "forecast", "translate", "speech"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = prepare(name, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_signal_at_a_random_moment_loses_nothing_and_resumes_exactly(prepared, task, how):
    trial = run_trial(prepared(task), f"m-{how}", how, np.random.default_rng(abs(hash((task, how))) % 2**32))
    assert trial.ok, trial
    if how != "SIGKILL" and trial.exit_code != 0:
        assert trial.state_saved


@pytest.mark.parametrize("how", ["save:rename:1", "save:rename:2", "save:rename:3", "save:write:2",
                                 "save:write:5"])
def test_a_kill_inside_a_save_keeps_a_whole_checkpoint(prepared, how):
    trial = run_trial(prepared("classify"), "m-save", how, np.random.default_rng(0))
    assert trial.exit_code == -9, trial
    assert trial.ok, trial


# The program's edges, outside main's own handling: ``main`` replaced, the signal sent from an atexit callback
# (the interpreter shutting down) or raised while the command starts.
_EDGE = """
import atexit, os, signal, sys, time
import unrolled.cli as cli
code, when, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def main():
    if when == "start":
        raise KeyboardInterrupt if name == "SIGINT" else cli._Terminated
    return code
def late():
    os.kill(os.getpid(), getattr(signal, name))
    time.sleep(5)
class LateInFinalization:  # its __del__ runs as the interpreter clears the modules, after atexit
    def __del__(self):
        os.kill(os.getpid(), getattr(signal, name))
        time.sleep(0.2)  # long enough for a default action to kill the process
cli.main = main
if when == "shutdown":
    atexit.register(late)
if when == "finalization":
    keeper = LateInFinalization()
cli.entry()
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("code", [0, 1])
def test_a_signal_while_the_interpreter_shuts_down_keeps_mains_exit_code_and_says_nothing(name, code):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _EDGE, str(code), "shutdown", name], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (code, "")


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("code", [0, 1])
def test_a_signal_in_the_interpreters_finalization_keeps_mains_exit_code(name, code):
    """After atexit, the interpreter puts Python's signal handlers back to the default action: a signal
    there killed a finished run (exit -2 in CI's kill trial); it is ignored, and main's code stands."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _EDGE, str(code), "finalization", name], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (code, "")


@pytest.mark.parametrize("name, code, said", [("SIGINT", 130, "unrolled: interrupted\n"),
                                              ("SIGTERM", 143, "unrolled: terminated\n")])
def test_a_signal_while_a_command_starts_ends_with_its_code_and_one_line(name, code, said):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _EDGE, "0", "start", name], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (code, said)


# The way out after main returns: atexit's callbacks run and the output is flushed, then the process ends
# without freeing its objects (cli._exit_after_atexit), unless another thread runs or torch is loaded.
_EXIT = """
import atexit, sys, threading, time
import unrolled.cli as cli
code, out, thread = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "thread"
def main():
    print("x" * 200_000)  # more than the stream buffers: a flush must deliver the rest
    atexit.register(lambda: open(out, "w").write("atexit ran"))
    if thread:
        def late():
            time.sleep(0.3)
            open(out + ".thread", "w").write("finished")
        threading.Thread(target=late).start()
    return code
cli.main = main
cli.entry()
"""


@pytest.mark.parametrize("code", [0, 3])
@pytest.mark.parametrize("thread", ["thread", "none"])
def test_the_exit_runs_atexit_flushes_and_waits_for_threads(tmp_path, code, thread):
    import subprocess
    import sys

    out = tmp_path / "marker"
    done = subprocess.run([sys.executable, "-c", _EXIT, str(code), str(out), thread], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (code, "")
    assert done.stdout == "x" * 200_000 + "\n"
    assert out.read_text() == "atexit ran"
    if thread == "thread":  # a running thread: the interpreter's own exit, which waits for it
        assert (tmp_path / "marker.thread").read_text() == "finished"


def test_predict_output_reaches_the_pipe_in_full():
    import subprocess
    import sys

    texts = "".join(f"text number {i} is {'good' if i % 2 else 'bad'}\n" for i in range(3000))
    done = subprocess.run([sys.executable, "-m", "unrolled", "predict"], input=texts, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3000 and lines[-1].endswith("text number 2999 is good")
