"""sfp.allocator: glibc's thresholds raised through mallopt, a user's own MALLOC_* setting respected."""

import importlib
import platform

import pytest

from sfp.allocator import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, THRESHOLD, USER_SETTINGS, keep_freed_memory


class FakeLibc:
    """Records mallopt calls; answers ``result`` (glibc: 1 on success, 0 on failure)."""

    def __init__(self, result: int = 1) -> None:
        self.calls, self.result = [], result

    def mallopt(self, option: int, value: int) -> int:
        self.calls.append((option, value))
        return self.result


@pytest.fixture
def no_user_settings(monkeypatch):
    for name in USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def test_both_thresholds_are_raised_to_one_gib(no_user_settings):
    libc = FakeLibc()
    assert keep_freed_memory(libc)
    assert sorted(libc.calls) == sorted([(-3, 1 << 30), (-1, 1 << 30)])
    assert (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, THRESHOLD) == (-3, -1, 1 << 30)  # glibc's malloc.h numbers


def test_a_refused_setting_is_reported(no_user_settings):
    assert not keep_freed_memory(FakeLibc(result=0))


@pytest.mark.parametrize("name", USER_SETTINGS)
def test_a_users_own_setting_wins(monkeypatch, no_user_settings, name):
    monkeypatch.setenv(name, "65536")
    libc = FakeLibc()
    assert not keep_freed_memory(libc) and libc.calls == []


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_the_real_glibc_accepts_the_setting(no_user_settings):
    assert keep_freed_memory()


def test_training_commands_set_it_and_data_commands_do_not(monkeypatch, tmp_path):
    cli = importlib.import_module("sfp.cli.main")

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(True))
    missing = str(tmp_path / "missing.yaml")
    assert cli.main(["fit", "--config", missing]) == 2 and calls == [True]
    assert cli.main(["data", "info", str(tmp_path / "missing.npz")]) == 2 and calls == [True]
