"""The fault-injection variables (SNNBATCH_KILL_AT_ITERATION, SNNBATCH_STOP_AT_ITERATION) name iterations:
one for every task, TASK_ID:ITERATION for the tasks whose id starts with TASK_ID, or several of these."""
from snnbatch.jobs.runner import _fault_at


def test_one_iteration_applies_to_every_task():
    assert _fault_at("7", "a1b2") == {7}
    assert _fault_at("", "a1b2") == frozenset()


def test_a_task_prefix_applies_to_the_tasks_it_starts():
    assert _fault_at("a1:7", "a1b2") == {7}
    assert _fault_at("a1:7", "b2a1") == frozenset()


def test_several_entries_name_several_iterations_of_their_tasks():
    value = "a1:25, a1:200,b2:3,9"
    assert _fault_at(value, "a1b2") == {25, 200, 9}
    assert _fault_at(value, "b2c3") == {3, 9}
    assert _fault_at(value, "c3d4") == {9}
