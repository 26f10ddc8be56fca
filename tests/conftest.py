"""Shared test set-up: headless rendering must be configured before anything imports mujoco."""

from mirror_align.headless import configure_headless_rendering

configure_headless_rendering()


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_sim_dataset(tmp_path_factory):
    """A real MirrorBench dataset: 2 tasks x 4 train + 2 test episodes at 32 px (seconds to make)."""
    from mirror_align.data.generate import generate

    root = tmp_path_factory.mktemp("tiny_sim_dataset")
    for split, count in (("train", 4), ("test", 2)):
        generate(
            root, ["open_drawer", "push_buttons"], count, split, 32, 8, workers=1, progress=False
        )
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small-tensor tests: a second thread gains nothing there, and
    on a loaded 2-core machine OpenMP spin-waiting made two threads 10-50x slower. Modules opt in
    with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
